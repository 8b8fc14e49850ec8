"""etc/grafana/seqgen.json: a Grafana dashboard over the two scrape jobs, every query valid PromQL.

(tests/integration/test_monitoring.py runs every query against a real Prometheus scraping a
running cluster and requires each to return series.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.prometheus_support import DASHBOARD, panel_queries

NEEDED = {
    # what issue 23 asks the dashboard to show -> a metric that shows it
    "numbers issued per second per server": "seqgen_numbers_issued_total",
    "numbers per second per proxy": "seqgen_proxy_numbers_relayed_total",
    "request outcomes": "seqgen_requests_total",
    "proxy request outcomes": "seqgen_proxy_requests_total",
    "latency": "seqgen_proxy_backend_latency_seconds_bucket",
    "shedding": "seqgen_proxy_shed_total",
    "store write time": "seqgen_store_write_seconds_sum",
    "fence state": "seqgen_fenced",
    "cluster state": "seqgen_cluster_conflicts",
    "peers reachable": "seqgen_cluster_peers_reachable",
}


def test_a_dashboard_with_a_prometheus_data_source_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "seqgen" and dashboard["title"] == "seqgen"
    (variable,) = dashboard["templating"]["list"]
    assert (variable["type"], variable["query"], variable["name"]) == (
        "datasource", "prometheus", "datasource")
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and panel["description"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_every_query_reads_the_scrape_jobs_of_the_rules() -> None:
    for title, expr in panel_queries():
        assert 'job="seqgen-admin"' in expr or 'job="seqgen-proxy"' in expr \
            or 'job=~"seqgen-admin|seqgen-proxy"' in expr, title


def test_it_shows_what_the_issue_asks_for() -> None:
    text = " ".join(expr for _, expr in panel_queries())
    for what, metric in NEEDED.items():
        assert metric in text, what


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    if shutil.which("promtool") is None:
        pytest.skip("needs promtool on PATH (Debian's prometheus package; scripts/test installs "
                    "it as root)")
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"panel_{k}", "expr": expr} for k, (_, expr) in enumerate(panel_queries())]}]}
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
