"""The Kubernetes manifests of etc/kubernetes: valid, consistent, and their pod script run.

Every manifest (and the ConfigMap and Secret that kustomization.yaml generates) is
validated offline against the Kubernetes API schemas (the kubernetes-validate package).
The StatefulSet, the Services, the proxies, the budget and the network policy must agree
with each other. Then the containers' command lines run for real, as pods of a 2- and a
3-replica StatefulSet would run them: seqgen-pod.sh, given the pod's name, starts a real
seqgen-server with --instance ordinal + 1 and a real seqgen-admin whose peers are the
other pods' stable names.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from tests.conftest import READY_TIMEOUT_S, Cluster, ask, free_port, numbers, request, wait_until
from tests.integration.admin_support import admin_ready

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "etc" / "kubernetes"
SCRIPT = K8S / "seqgen-pod.sh"
VENV_BIN = Path(sys.prefix) / "bin"
KUBERNETES_VERSIONS = ("1.28.0", kubernetes_validate.latest_version())
TOKEN = "kubernetes-test-token"


def documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc is not None]


def kustomization() -> dict[str, Any]:
    (doc,) = documents("kustomization.yaml")
    return doc


def generated() -> Iterator[dict[str, Any]]:
    """The ConfigMap and Secret that kustomize makes from kustomization.yaml."""
    for gen in kustomization()["configMapGenerator"]:
        data = {Path(f).name: (K8S / f).read_text() for f in gen["files"]}
        yield {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": data}
    for gen in kustomization()["secretGenerator"]:
        pairs = dict(f.split("=", 1) for f in gen["files"])
        data = {key: (K8S / f).read_text().strip() for key, f in pairs.items()}
        yield {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": gen["name"]}, "stringData": data}


def every_resource() -> list[dict[str, Any]]:
    return [doc for name in kustomization()["resources"] for doc in documents(name)] + list(generated())


def the(kind: str, name: str) -> dict[str, Any]:
    (found,) = [r for r in every_resource() if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def containers() -> dict[str, dict[str, Any]]:
    spec = the("StatefulSet", "seqgen")["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec["containers"]}


def env_value(container: dict[str, Any], name: str) -> str:
    (found,) = [e for e in container["env"] if e["name"] == name]
    return str(found["value"])


# ---- valid and consistent ----------------------------------------------------------


def test_kustomization_lists_every_manifest_in_the_directory() -> None:
    listed = set(kustomization()["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(version: str) -> None:
    resources = every_resource()
    assert {r["kind"] for r in resources} >= {
        "StatefulSet", "Service", "Deployment", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap", "Secret"}
    for resource in resources:
        kubernetes_validate.validate(resource, version, strict=True)  # raises on any error


def test_validation_rejects_a_broken_manifest() -> None:
    """The check above can fail: a misspelt field is refused."""
    statefulset = the("StatefulSet", "seqgen")
    statefulset["spec"]["replica"] = statefulset["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_instance_count_is_the_same_everywhere() -> None:
    statefulset = the("StatefulSet", "seqgen")
    replicas = statefulset["spec"]["replicas"]
    assert replicas in (2, 3)
    for container in containers().values():
        assert env_value(container, "SEQGEN_INSTANCES") == str(replicas)
    # The proxies list every server by its stable name, one --host per instance.
    service = statefulset["spec"]["serviceName"]
    command = the("Deployment", "seqgen-proxy")["spec"]["template"]["spec"]["containers"][0]["command"]
    hosts = [command[i + 1] for i, arg in enumerate(command) if arg == "--host"]
    assert hosts == [f"tcp://seqgen-{k}.{service}:6410" for k in range(replicas)]


def test_services_budget_and_policy_fit_the_statefulset() -> None:
    statefulset = the("StatefulSet", "seqgen")
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    headless = the("Service", statefulset["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["selector"] == labels
    assert env_value(containers()["admin"], "SEQGEN_SERVICE") == headless["metadata"]["name"]
    budget = the("PodDisruptionBudget", "seqgen-servers")["spec"]
    assert budget == {"maxUnavailable": 1, "selector": {"matchLabels": labels}}
    # Only the public and admin ports are open; control stays on the pod's loopback.
    policy = the("NetworkPolicy", "seqgen-servers")["spec"]
    assert policy["podSelector"] == {"matchLabels": labels}
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [6410, 6411]
    for container in containers().values():
        command = container["command"]
        assert command[command.index("--control") + 1] == "tcp://127.0.0.1:6412"
    admin = containers()["admin"]
    assert admin["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    # One claim per server, mounted where --data and --witness-file point.
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    for container in containers().values():
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts[claim["metadata"]["name"]] == "/var/lib/seqgen"
    proxy_service = the("Service", "seqgen-proxy")
    proxy_labels = the("Deployment", "seqgen-proxy")["spec"]["template"]["metadata"]["labels"]
    assert proxy_service["spec"]["selector"] == proxy_labels


# ---- the pod script, run -----------------------------------------------------------


def run_script(pod: str, instances: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "SEQGEN_POD_NAME": pod, "SEQGEN_INSTANCES": instances,
           "SEQGEN_SERVICE": "seqgen-servers"}
    return subprocess.run(["sh", str(SCRIPT), *args], env=env, capture_output=True, text=True,
                          timeout=30, check=False)


@pytest.mark.parametrize(("pod", "instances", "message"), [
    ("seqgen-2", "2", "scaling the StatefulSet does not change the instance count"),
    ("seqgen-3", "3", "would be instance 4"),
    ("seqgen", "3", "does not end in -ORDINAL"),
    ("seqgen-01", "3", "does not end in -ORDINAL"),
    ("seqgen-0", "4", "SEQGEN_INSTANCES must be 2 or 3"),
])
def test_the_script_refuses_a_pod_without_an_instance(pod: str, instances: str, message: str) -> None:
    ran = run_script(pod, instances, "server", str(VENV_BIN / "seqgen-server"), "--help")
    assert ran.returncode == 2 and message in ran.stderr, ran
    assert ran.stdout == ""  # the program never ran


def container_argv(name: str, data: Path, ports: dict[str, str]) -> list[str]:
    """A container's command with this machine's paths and free ports."""
    argv = []
    paths = {"/etc/seqgen/seqgen-pod.sh": str(SCRIPT), "/opt/seqgen/.venv/bin": str(VENV_BIN),
             "/var/lib/seqgen": str(data)}
    for arg in containers()[name]["command"]:
        value = ports.get(arg, arg)
        for old, new in paths.items():
            value = value.replace(old, new)
        argv.append(value)
    return argv


def container_env(name: str, pod: str, instances: int) -> dict[str, str]:
    """A container's environment as the kubelet sets it (pod name, token), for ``instances``."""
    env = dict(os.environ)
    for var in containers()[name]["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        elif var["valueFrom"].get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[var["name"]] = pod
        elif "secretKeyRef" in var["valueFrom"]:
            env[var["name"]] = TOKEN
    env["SEQGEN_INSTANCES"] = str(instances)
    return env


@pytest.mark.parametrize(("replicas", "ordinal"), [(2, 0), (2, 1), (3, 0), (3, 1), (3, 2)])
def test_a_pod_runs_instance_ordinal_plus_one_with_the_other_pods_as_peers(
    cluster: Cluster, replicas: int, ordinal: int
) -> None:
    pod = f"seqgen-{ordinal}"
    public = f"tcp://127.0.0.1:{free_port()}"
    control = f"tcp://127.0.0.1:{free_port()}"
    admin_url = f"http://127.0.0.1:{free_port()}"
    ports = {"tcp://0.0.0.0:6410": public, "tcp://127.0.0.1:6412": control, "http://0.0.0.0:6411": admin_url}
    data = cluster.root / pod
    server = cluster.command(container_argv("server", data, ports), "server",
                             env=container_env("server", pod, replicas))
    wait_until(lambda: request(control, b'{"type":"ping"}', timeout_s=0.5) is not None,
               READY_TIMEOUT_S, "the pod's seqgen-server", server)
    admin = cluster.command(container_argv("admin", data, ports), "admin",
                            env=container_env("admin", pod, replicas))
    wait_until(lambda: admin_ready(admin_url), READY_TIMEOUT_S, "the pod's seqgen-admin", admin)

    status = httpx.get(f"{admin_url}/status", timeout=5.0).json()
    assert (status["instance"], status["instances"]) == (ordinal + 1, replicas)
    # A new volume starts fenced, until the operator unfences it (a new cluster).
    assert status["fenced"] is True
    assert ask(public, ["invoice", "0"]) == ["UNAVAILABLE", "fenced"]
    unfenced = httpx.post(f"{admin_url}/unfence", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5.0)
    assert unfenced.status_code == 200, unfenced.text
    first = numbers(public, "invoice")[0]
    assert first % replicas == (ordinal + 1) % replicas
    # Restarted on its store, the server is not fenced again and goes on above.
    assert server.term() == 0
    server = cluster.command(server.args, "server", env=container_env("server", pod, replicas))
    wait_until(lambda: request(control, b'{"type":"ping"}', timeout_s=0.5) is not None,
               READY_TIMEOUT_S, "the pod's seqgen-server, restarted", server)
    wait_until(lambda: admin_ready(admin_url), READY_TIMEOUT_S, "the admin sees the restarted server", admin)
    assert httpx.get(f"{admin_url}/status", timeout=5.0).json()["fenced"] is False
    assert numbers(public, "invoice", last=first)[0] > first
    peers = [peer["url"] for peer in httpx.get(f"{admin_url}/cluster", timeout=5.0).json()["peers"]]
    assert peers == [f"http://seqgen-{k}.seqgen-servers:6411" for k in range(replicas) if k != ordinal]
    assert (data / "seqgen.db").is_file()
