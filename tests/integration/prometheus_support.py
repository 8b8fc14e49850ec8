"""A real Prometheus (Debian's package) for the monitoring tests: started on a free port with
the project's rules, scraping targets listed in files it watches, read through its HTTP API."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import READY_TIMEOUT_S, Cluster, Proc, free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "etc" / "prometheus" / "seqgen-rules.yml"
DASHBOARD = REPO / "etc" / "grafana" / "seqgen.json"
INTERVAL = "1s"
"""Rule evaluation interval of the test's Prometheus (and how often it reads its target files)."""
SCRAPE = "2s"
"""Scrape interval and timeout: above the admins' --control-timeout (1 s), which a scrape of
an admin whose server is down waits out (docs/operations.md, "Monitoring")."""


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel of the Grafana dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"]
            for target in panel.get("targets", [])]


def rules_with_short_for(names: Iterable[str], for_: str = "1s") -> dict[str, Any]:
    """The shipped rules, with the ``for:`` of the alerts ``names`` shortened (nothing else
    changes), so that a test sees them fire in seconds rather than minutes or hours."""
    rules = yaml.safe_load(RULES.read_text())
    wanted = set(names)
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") in wanted:
                rule["for"] = for_
                wanted.discard(rule["alert"])
    assert not wanted, f"no such alerts: {wanted}"
    return rules


class Prometheus:
    """``prometheus`` with scrape jobs seqgen-admin and seqgen-proxy, each fed by a file."""

    def __init__(self, cluster: Cluster, rules: dict[str, Any],
                 admin_tls: dict[str, str] | None = None, name: str = "prometheus") -> None:
        """``admin_tls``: Prometheus's ``tls_config`` for the seqgen-admin job (then scraped
        over https://), as an operator writes it for admins with --tls-cert; ``name``: its
        folder under the cluster's root (one per Prometheus of a test)."""
        self.root = cluster.root / name
        self.root.mkdir()
        (self.root / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
        self.targets: dict[str, list[str]] = {"seqgen-admin": [], "seqgen-proxy": []}
        for job in self.targets:
            self._write_targets(job)
        config = {
            "global": {"scrape_interval": SCRAPE, "evaluation_interval": INTERVAL,
                       "scrape_timeout": SCRAPE},
            "rule_files": ["rules.yml"],
            "scrape_configs": [
                {"job_name": job, "file_sd_configs": [{"files": [f"{job}.json"],
                                                       "refresh_interval": INTERVAL}],
                 **({"scheme": "https", "tls_config": admin_tls}
                    if job == "seqgen-admin" and admin_tls is not None else {})}
                for job in self.targets
            ],
        }
        (self.root / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.proc: Proc = cluster.command([
            "prometheus", f"--config.file={self.root / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.root / 'data'}",
            f"--web.listen-address={self.url.removeprefix('http://')}",
            "--log.level=warn",
        ], "prometheus")
        wait_until(self._ready, READY_TIMEOUT_S, "prometheus", self.proc)

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def _write_targets(self, job: str) -> None:
        path = self.root / f"{job}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps([{"targets": self.targets[job]}]))
        os.replace(temporary, path)  # Prometheus never reads half a file

    def scrape(self, job: str, url: str) -> str:
        """Add ``url`` (http:// or https://HOST:PORT) to ``job``; the ``instance`` label it will
        have."""
        instance = url.removeprefix("http://").removeprefix("https://")
        self.targets[job].append(instance)
        self._write_targets(job)
        return instance

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", response.text
        return body["data"]

    def targets_up(self) -> bool:
        """Every listed target was scraped, and its last scrape succeeded."""
        active = self.api("targets", state="active")["activeTargets"]
        listed = sum(len(targets) for targets in self.targets.values())
        return len(active) == listed and all(t["health"] == "up" for t in active)

    def evaluations(self) -> int:
        """How many times the alerting rules were evaluated (Prometheus's own metric)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            if family.name == "prometheus_rule_group_iterations":
                return sum(int(s.value) for s in family.samples
                           if s.name.endswith("_total") and s.labels["rule_group"].endswith(
                               ";seqgen-alerts"))
        return 0

    def alerts(self, state: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return [a for a in found if state is None or a["state"] == state]

    def firing(self, alertname: str, **labels: str) -> bool:
        return any(a["labels"].get("alertname") == alertname
                   and all(a["labels"].get(k) == v for k, v in labels.items())
                   for a in self.alerts("firing"))

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result
