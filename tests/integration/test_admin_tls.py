"""The admin plane over TLS (issue 21): HTTPS served by the admin itself, peers verified against
--tls-ca, mutual TLS with --tls-client-ca, with certificates made here by ``openssl``."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Cluster, free_port, numbers, wait_until
from tests.integration.admin_support import start_admin
from tests.integration.operator_support import (
    TOKEN,
    cluster_view,
    peers_reachable,
    start_host,
    wait_witnessed,
)
from tests.integration.prometheus_support import Prometheus
from tests.tls_support import Pki


def https_url() -> str:
    return f"https://127.0.0.1:{free_port()}"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "pki")


def test_https_with_the_right_ca_and_each_refusal(cluster: Cluster, pki: Pki, tmp_path: Path) -> None:
    wrong = Pki(tmp_path / "wrong", "wrong-ca")
    server = cluster.server()
    host = pki.host("host1")
    tls = start_admin(cluster, server.control, token=TOKEN, url=https_url(),
                      extra=host.flags(pki.ca, client_ca=False), verify=pki.context())
    with tls.client() as http:
        assert http.get("/status").json()["instance"] == 1
    # Another CA's trust: the client refuses the admin's certificate.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tls.url}/status", verify=wrong.context())
    # Plain HTTP to the TLS port is answered in plain HTTP: 400 and why (as nginx does).
    plain = tls.url.replace("https://", "http://")
    told = httpx.get(f"{plain}/status", timeout=5)
    assert told.status_code == 400
    assert told.json()["detail"].startswith("this port speaks HTTPS")
    assert "plain HTTP request came to the HTTPS port" in tls.proc.log()
    with tls.client() as http:  # and the port still serves HTTPS
        assert http.get("/healthz").status_code == 200

    # Mutual TLS: no client certificate is answered 403 with the reason, before any route;
    # one of another CA is refused in the handshake.
    mutual = start_admin(cluster, server.control, token=TOKEN, url=https_url(),
                         extra=pki.host("host2").flags(pki.ca),
                         verify=pki.context(pki.host("operator")))
    for path in ("/status", "/healthz", "/metrics", "/sequences/x"):
        refused = httpx.get(f"{mutual.url}{path}", verify=pki.context())
        assert refused.status_code == 403, (path, refused.text)
        assert "requires a client certificate" in refused.json()["detail"]
    refused = httpx.put(f"{mutual.url}/sequences/x/floor", json={"value": "9"},
                        headers={"Authorization": f"Bearer {TOKEN}"}, verify=pki.context())
    assert refused.status_code == 403
    assert mutual.client().get("/sequences/x").status_code == 404, "the write was never served"
    assert "without a client certificate" in mutual.proc.log()
    # A client certificate of another CA fails the handshake; asyncio drops the TLS alert that
    # would tell the client why, so the admin's log says it.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{mutual.url}/status", verify=pki.context(wrong.host("intruder")))
    wait_until(lambda: "refused a client certificate in the TLS handshake: unable to get local "
               "issuer certificate" in mutual.proc.log(), 10, "the refusal in the admin's log")
    # With the operator's certificate: a Prometheus-style scrape.
    with mutual.client() as http:
        scraped = http.get("/metrics")
    assert scraped.status_code == 200
    names = {family.name for family in text_string_to_metric_families(scraped.text)}
    assert "seqgen_server_up" in names or "seqgen_up" in names, sorted(names)[:20]

    # An admin polling peers whose certificates do not verify shows each unreachable, with
    # the reason; a good one answers.
    bad = {
        "expired": pki.host("expired", days=-1),
        "elsewhere": pki.host("elsewhere", alt_names="DNS:elsewhere.example"),
        "other-ca": wrong.host("other-ca"),
    }
    bad_urls = {}
    for name, cert in bad.items():
        admin = start_admin(cluster, server.control, token=TOKEN, url=https_url(),
                            extra=cert.flags(pki.ca, client_ca=False), verify=False)
        bad_urls[admin.url] = name
    peers = [*bad_urls, tls.url, mutual.url, plain]  # plain: http:// to the TLS port
    args = ["--tls-ca", str(pki.ca), "--witness-file", str(tmp_path / "w.db"),
            "--witness-interval", "0.2"]
    for url in peers:
        args += ["--peer", url]
    poller = start_admin(cluster, server.control, token=TOKEN, extra=args)

    def settled() -> bool:
        with poller.client() as http:
            views = http.get("/cluster").json()["peers"]
        return all(view["reachable"] or view["error"] for view in views)

    wait_until(settled, 20, "every peer polled once", poller.proc)
    with poller.client() as http:
        views = {view["url"]: view for view in http.get("/cluster").json()["peers"]}
    assert views[tls.url]["reachable"] is True
    errors = {bad_urls.get(url, url): view["error"] for url, view in views.items() if not view["reachable"]}
    assert set(errors) == {"expired", "elsewhere", "other-ca", mutual.url, plain}, errors
    assert "this port speaks HTTPS" in errors[plain]  # the peer's own 400, with the reason
    assert "certificate has expired" in errors["expired"]
    assert "Hostname mismatch" in errors["elsewhere"] or "IP address mismatch" in errors["elsewhere"]
    assert "unable to get local issuer certificate" in errors["other-ca"]
    assert "requires a client certificate" in errors[mutual.url]  # its 403, with the reason
    for url in bad_urls:
        assert views[url]["error"].startswith(f"UNAVAILABLE: {url}/changes: TLS: "), errors


def test_cluster_witness_and_recover_between_peers_over_mutual_tls(cluster: Cluster, pki: Pki) -> None:
    urls = [https_url(), https_url()]
    operator = pki.context(pki.host("operator"))
    a = start_host(cluster, 1, 2, urls[0], [urls[1]], admin_extra=pki.host("host1").flags(pki.ca),
                   verify=operator)
    b = start_host(cluster, 2, 2, urls[1], [urls[0]], admin_extra=pki.host("host2").flags(pki.ca),
                   verify=operator)
    wait_until(peers_reachable(a, 1), 20, "admin 1 sees admin 2 over mutual TLS")
    wait_until(peers_reachable(b, 1), 20, "admin 2 sees admin 1 over mutual TLS")
    assert cluster_view(a)["conflicts"] == []
    got = numbers(a.server.bind, "t", count=3)
    wait_witnessed(b, 1, "t", got[-1])
    # A client certificate is no token: writes still need it.
    with a.admin.client() as no_token:
        assert no_token.post("/fence").status_code == 401
    with a.http() as http:
        assert http.post("/fence").status_code == 200
        response = http.post("/recover", json={"margin": "1000"})
        assert response.status_code == 200, response.text
        assert response.json()["raised"] == 1
        assert http.get("/status").json()["fenced"] is False
    assert numbers(a.server.bind, "t") == [got[-1] + 1000 + 2]


@pytest.mark.skipif(shutil.which("prometheus") is None,
                    reason="Debian's prometheus is not installed (scripts/test installs it as root)")
def test_a_real_prometheus_scrapes_an_admin_over_mutual_tls(cluster: Cluster, pki: Pki) -> None:
    """The scrape configuration of docs/operations.md (scheme https, a tls_config with the
    cluster's CA and Prometheus's own certificate) against an admin that requires client
    certificates; without its certificate the same scrape is refused."""
    server = cluster.server()
    admin = start_admin(cluster, server.control, token=TOKEN, url=https_url(),
                        extra=pki.host("host1").flags(pki.ca),
                        verify=pki.context(pki.host("operator")))
    scraper = pki.host("prometheus")
    good = Prometheus(cluster, {"groups": []}, admin_tls={
        "ca_file": str(pki.ca), "cert_file": str(scraper.cert), "key_file": str(scraper.key)})
    good.scrape("seqgen-admin", admin.url)
    wait_until(good.targets_up, 60, "prometheus scraped the admin over mutual TLS", good.proc)
    wait_until(lambda: good.query("seqgen_server_up") != [], 30, "seqgen_server_up in prometheus")
    assert [sample["value"][1] for sample in good.query("seqgen_server_up")] == ["1"]
    # The same job without Prometheus's certificate: the admin refuses the handshake.
    bare = Prometheus(cluster, {"groups": []}, admin_tls={"ca_file": str(pki.ca)}, name="bare")
    bare.scrape("seqgen-admin", admin.url)

    def scraped_and_refused() -> bool:
        active = bare.api("targets", state="active")["activeTargets"]
        return bool(active) and active[0]["health"] == "down" and bool(active[0]["lastError"])

    wait_until(scraped_and_refused, 60, "prometheus's scrape without a certificate refused", bare.proc)
