"""seqgen-admin against a real server: every endpoint, its status codes, floors, metrics.

One server and one admin (with a token) serve the whole module; each test
uses its own sequence names. Faults (server down, kill -9, no token) are in
test_admin_faults.py.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from seqgen_common.limits import MAX_VALUE
from tests.conftest import Cluster, ServerProc, numbers
from tests.integration.admin_support import Admin, bearer, start_admin

TOKEN = "s3cret-token"


@dataclass
class Env:
    server: ServerProc
    admin: Admin
    http: httpx.Client


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    root = Path(tempfile.mkdtemp(prefix="sga", dir="/tmp"))
    cluster = Cluster(root)
    try:
        server = cluster.server(reserve=50)
        admin = start_admin(cluster, server.control, token=TOKEN)
        with admin.client() as http:
            yield Env(server, admin, http)
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)


def path_of(name: str) -> str:
    return "/sequences/" + quote(name, safe="")


def put_floor(env: Env, name: str, value: object, token: str | None = TOKEN) -> httpx.Response:
    headers = bearer(token) if token is not None else {}
    return env.http.put(f"{path_of(name)}/floor", json={"value": value}, headers=headers)


# ---- health -------------------------------------------------------------------------


def test_healthz_and_readyz(env: Env) -> None:
    health = env.http.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    ready = env.http.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert (body["instance"], body["instances"]) == (1, 1)
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", body["version"])


# ---- status -------------------------------------------------------------------------


def test_status_reports_the_servers_configuration_and_counters(env: Env) -> None:
    before = env.http.get("/status").json()
    got = numbers(env.server.bind, "status/a", count=5)
    assert got == sorted(got) and len(got) == 5
    after = env.http.get("/status")
    assert after.status_code == 200
    status = after.json()
    assert status["instance"] == 1 and status["instances"] == 1
    assert status["reserve"] == 50 and status["drift"] == 100
    assert status["data_dir"] == str(env.server.data)
    assert status["store_ok"] is True and status["clean_start"] is True
    assert status["uptime_s"] >= before["uptime_s"]
    assert status["sequences"] >= 1
    counters = status["counters"]
    assert counters["numbers_issued"] == before["counters"]["numbers_issued"] + 5
    assert counters["requests"]["OK"] == before["counters"]["requests"].get("OK", 0) + 1
    assert counters["control_requests"] > before["counters"]["control_requests"]


# ---- sequences ----------------------------------------------------------------------


def test_sequences_pages_through_more_than_one_page(env: Env) -> None:
    names = [f"page/{i:02d}" for i in range(23)]
    for name in reversed(names):
        numbers(env.server.bind, name)
    numbers(env.server.bind, "pagf")  # sorts right after the prefix: must not show up
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"prefix": "page/", "limit": 10}
        if cursor is not None:
            params["cursor"] = cursor
        response = env.http.get("/sequences", params=params)
        assert response.status_code == 200
        page = response.json()
        pages += 1
        assert len(page["items"]) <= 10
        for item in page["items"]:
            assert item == {"name": item["name"], "current": "1", "durable": item["durable"]}
            assert int(item["durable"]) >= 1
        seen += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == names


def test_sequences_query_limits(env: Env) -> None:
    assert env.http.get("/sequences", params={"limit": 1000}).status_code == 200
    for bad in (0, 1001, "x"):
        response = env.http.get("/sequences", params={"limit": bad})
        assert response.status_code == 422, bad
        assert response.json()["fields"] == ["query.limit"]
    assert env.http.get("/sequences", params={"prefix": "p" * 201}).status_code == 422


def test_get_one_sequence(env: Env) -> None:
    for name in ("get/one", "get with spaces", "grüße/€", "get/x/floor"):
        issued = numbers(env.server.bind, name, count=3)
        response = env.http.get(path_of(name))
        assert response.status_code == 200, name
        body = response.json()
        assert body["name"] == name
        assert body["current"] == str(issued[-1])
        assert int(body["durable"]) >= issued[-1]


def test_get_unknown_or_invalid_sequence(env: Env) -> None:
    missing = env.http.get(path_of("get/never-used"))
    assert missing.status_code == 404
    assert "get/never-used" in missing.json()["detail"]
    for bad in ("bad\x01name", "é" * 101, "x" * 201):
        response = env.http.get(path_of(bad))
        assert response.status_code == 422, bad
        assert response.json()["fields"] == ["path.name"]
    assert env.http.get("/sequences/").status_code == 422


# ---- floors ---------------------------------------------------------------------------


def test_floor_on_a_new_name(env: Env) -> None:
    response = put_floor(env, "floor/new", "100000")
    assert response.status_code == 200, response.text
    assert response.json() == {"name": "floor/new", "current": "100000", "durable": "100000"}
    assert env.http.get(path_of("floor/new")).json()["current"] == "100000"
    assert numbers(env.server.bind, "floor/new") == [100001]


def test_floor_on_an_existing_name_and_backwards(env: Env) -> None:
    name = "floor/existing"
    assert numbers(env.server.bind, name, count=10)[-1] == 10
    assert put_floor(env, name, "5000").status_code == 200
    assert numbers(env.server.bind, name) == [5001]
    # Below what was issued: refused, and nothing changes.
    refused = put_floor(env, name, "4000")
    assert refused.status_code == 409
    assert "5001" in refused.json()["detail"]
    assert env.http.get(path_of(name)).json()["current"] == "5001"
    assert numbers(env.server.bind, name) == [5002]
    # The same value as issued is accepted and changes nothing.
    same = put_floor(env, name, "5002")
    assert same.status_code == 200
    assert same.json()["current"] == "5002"
    assert numbers(env.server.bind, name) == [5003]


def test_floor_values_are_64_bit_digit_strings(env: Env) -> None:
    name = "floor/max"
    ok = put_floor(env, name, str(MAX_VALUE - 1))
    assert ok.status_code == 200
    assert ok.json()["current"] == str(MAX_VALUE - 1)  # exact: a string, not a float
    assert numbers(env.server.bind, name) == [MAX_VALUE]


@pytest.mark.parametrize(
    "value",
    [5, -1, "", "-1", "1.5", "1e3", " 7", "abc", "١٢", str(MAX_VALUE + 1), "1" * 20, None, [1]],
)
def test_malformed_floor_values_are_422_and_change_nothing(env: Env, value: object) -> None:
    name = "floor/malformed"
    put_floor(env, name, "10")
    response = put_floor(env, name, value)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["fields"] == ["body.value"] or body["fields"][0].startswith("body.value")
    # A sentence an operator can act on: no regular expression, no pydantic internals.
    assert body["detail"].startswith('Invalid request: the body field "value" ')
    assert "^" not in body["detail"] and "[0-9]" not in body["detail"] and len(body["detail"]) < 300
    assert env.http.get(path_of(name)).json()["current"] == "10"


def test_a_negative_floor_is_refused_with_a_sentence(env: Env) -> None:
    response = put_floor(env, "floor/negative", "-1")
    assert response.status_code == 422
    assert response.json() == {
        "detail": 'Invalid request: the body field "value" must be the decimal digits of a number '
                  f'from 0 to {MAX_VALUE}, as a string (got "-1").',
        "fields": ["body.value"],
    }
    assert "not valid JSON" in env.http.put(
        f"{path_of('floor/negative')}/floor", content=b"not json",
        headers={**bearer(TOKEN), "Content-Type": "application/json"}).json()["detail"]


def test_unknown_endpoints_and_methods_are_answered_with_sentences(env: Env) -> None:
    missing = env.http.get("/nothing/here")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "No such endpoint: GET /nothing/here (the endpoints are "
                                        "listed at /docs)."}
    wrong = env.http.delete("/status")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET"
    assert wrong.json() == {"detail": "DELETE is not allowed on /status: use GET."}


def test_malformed_floor_bodies(env: Env) -> None:
    url = f"{path_of('floor/body')}/floor"
    for body in (b"", b"not json", b"[]", b'{"value": "1", "other": 2}', b"{}"):
        response = env.http.put(url, content=body, headers={
            **bearer(TOKEN), "Content-Type": "application/json"})
        assert response.status_code == 422, body
    assert env.http.get(path_of("floor/body")).status_code == 404
    bad_name = put_floor(env, "bad\x7fname", "1")
    assert bad_name.status_code == 422


def test_write_auth_with_a_token_configured(env: Env) -> None:
    name = "auth/matrix"
    missing = put_floor(env, name, "7", token=None)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = put_floor(env, name, "7", token="not-" + TOKEN)
    assert wrong.status_code == 401
    assert put_floor(env, name, "7", token=TOKEN[:-1]).status_code == 401
    basic = env.http.put(f"{path_of(name)}/floor", json={"value": "7"},
                         headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    # Refused before the body is even looked at.
    assert put_floor(env, name, "not digits", token=None).status_code == 401
    assert env.http.get(path_of(name)).status_code == 404  # nothing was written
    right = put_floor(env, name, "7", token=TOKEN)
    assert right.status_code == 200
    assert right.json()["current"] == "7"
    # Reads need no token.
    assert env.http.get(path_of(name)).status_code == 200


def test_wrong_method_and_unknown_path(env: Env) -> None:
    assert env.http.post("/status").status_code == 405
    plain = env.http.put(path_of("x"), json={"value": "1"})
    assert plain.status_code == 405
    assert plain.headers["allow"] == "GET"
    # "/sequences/a/floor" is the floor of "a" (PUT) and, for GET, the sequence "a/floor".
    floor = env.http.request("OPTIONS", "/sequences/a/floor")
    assert floor.status_code == 405
    assert floor.headers["allow"] == "PUT"
    assert env.http.get("/sequences/a/floor").status_code == 404  # no sequence "a/floor"
    assert env.http.get("/no/such/page").status_code == 404


def test_names_with_line_breaks_are_invalid_not_missing(env: Env) -> None:
    assert env.http.get(path_of("line\nbreak")).status_code == 422
    assert put_floor(env, "line\nbreak", "1").status_code == 422


# ---- metrics --------------------------------------------------------------------------


def scrape(env: Env) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = env.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_metrics_export_the_servers_counters_and_the_admins_http_metrics(env: Env) -> None:
    numbers(env.server.bind, "metrics/a", count=4)
    assert env.http.get(path_of("metrics/never")).status_code == 404
    samples = scrape(env)
    status = env.http.get("/status").json()
    assert samples["seqgen_server_up"][()] == 1
    info = samples["seqgen_server_info"]
    assert list(info) == [(("instance", "1"), ("instances", "1"), ("version", status["version"]))]
    ok_before = samples["seqgen_requests_total"][(("outcome", "OK"),)]
    assert ok_before == status["counters"]["requests"]["OK"]
    assert samples["seqgen_numbers_issued_total"][()] == status["counters"]["numbers_issued"]
    assert samples["seqgen_sequences"][()] == status["sequences"]
    assert samples["seqgen_reserve"][()] == 50
    assert samples["seqgen_store_ok"][()] == 1
    assert samples["seqgen_store_write_seconds_count"][()] == status["counters"]["store_writes"]
    assert samples["seqgen_store_write_seconds_sum"][()] > 0
    for name in ("seqgen_catchups_total", "seqgen_catchup_skipped_numbers_total",
                 "seqgen_reservations_written_total", "seqgen_store_write_failures_total",
                 "seqgen_disk_waits_total", "seqgen_control_requests_total",
                 "seqgen_skipped_at_start_numbers", "seqgen_uptime_seconds", "seqgen_drift",
                 "seqgen_clean_start", "seqgen_store_write_seconds_max"):
        assert () in samples[name], name
    # The admin's own HTTP metrics, by route template and status.
    http = samples["seqgen_admin_http_requests_total"]
    assert http[(("method", "GET"), ("route", "/sequences/{name}"), ("status", "404"))] >= 1
    assert http[(("method", "GET"), ("route", "/status"), ("status", "200"))] >= 1
    count = samples["seqgen_admin_http_request_duration_seconds_count"]
    assert count[(("method", "GET"), ("route", "/status"))] >= 1
    # Counters move at the next scrape: the server is asked every time.
    numbers(env.server.bind, "metrics/a")
    assert scrape(env)["seqgen_requests_total"][(("outcome", "OK"),)] == ok_before + 1


def test_unmatched_paths_share_one_route_label(env: Env) -> None:
    for i in range(3):
        env.http.get(f"/nothing/{i}")
    http = scrape(env)["seqgen_admin_http_requests_total"]
    assert http[(("method", "GET"), ("route", "<unmatched>"), ("status", "404"))] >= 3
    assert not any("/nothing/" in dict(labels)["route"] for labels in http)


# ---- OpenAPI, docs and the status page ------------------------------------------------


def test_openapi_documents_every_operation_and_field(env: Env) -> None:
    schema = env.http.get("/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    paths = schema["paths"]
    assert set(paths) == {"/healthz", "/readyz", "/status", "/sequences", "/sequences/{name}",
                          "/sequences/{name}/floor", "/metrics", "/cluster", "/witness/{instance}",
                          "/changes", "/fence", "/unfence", "/recover", "/resize", "/resize/step",
                          "/backup"}
    floor = paths["/sequences/{name}/floor"]["put"]
    assert {"200", "401", "403", "409", "422", "503"} <= set(floor["responses"])
    assert floor["security"] == [{"HTTPBearer": []}]
    for path, method in (("/fence", "post"), ("/unfence", "post"), ("/recover", "post"),
                         ("/backup", "get")):
        operation = paths[path][method]
        assert operation["security"] == [{"HTTPBearer": []}], path
        assert {"200", "401", "403", "503"} <= set(operation["responses"]), path
    assert "security" not in paths["/cluster"]["get"]
    assert "404" in paths["/witness/{instance}"]["get"]["responses"]
    assert "409" in paths["/recover"]["post"]["responses"]
    backup = paths["/backup"]["get"]["responses"]["200"]["content"]
    assert backup["application/octet-stream"]["schema"]["format"] == "binary"
    assert "404" in paths["/sequences/{name}"]["get"]["responses"]
    assert "503" in paths["/status"]["get"]["responses"]
    components = schema["components"]["schemas"]
    for model in ("ServerStatus", "ServerCounters", "Sequence", "SequenceList", "FloorRequest",
                  "ClusterView", "PeerState", "WitnessPage", "WitnessEntry", "Changes",
                  "ChangeItem", "FenceResult", "RecoverRequest", "RecoverResult", "PeerAsked"):
        for field, spec in components[model]["properties"].items():
            ref = spec.get("$ref")  # a nested model is documented by its own description
            documented = components[ref.rpartition("/")[2]] if ref else spec
            assert documented.get("description"), f"{model}.{field} is not documented"
    for field in ("current", "durable"):
        assert components["Sequence"]["properties"][field]["type"] == "string"
    assert components["FloorRequest"]["properties"]["value"]["type"] == "string"


def test_docs_and_status_page_use_only_local_assets(env: Env) -> None:
    docs = env.http.get("/docs")
    assert docs.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        assert not re.match(r"(?i)(https?:)?//", asset), asset
        assert env.http.get(asset).status_code == 200, asset
    bundle = env.http.get(next(a for a in assets if a.endswith("swagger-ui-bundle.js"))).text
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.', bundle)
    assert version is not None and int(version.group(1)) >= 5  # Swagger UI 5 renders OAS 3.1
    page = env.http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert not re.search(r'(?i)(?:src|href)="(?:https?:)?//', page.text)
    assert 'id="sequences"' in page.text
