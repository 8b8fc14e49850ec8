"""The documents against the running programs: the admin's endpoints, error bodies and
metrics, and the proxy's metrics when it has them.

Everything is derived from what the processes serve: the admin's /openapi.json,
its /metrics (and the proxy's, when its parser has ``--metrics``), and the answers
to the bad inputs that docs/admin.md documents. A failure names the endpoint,
status or metric and the document that lacks it (or wrongly has it).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from seqgen_proxy.config import _build_parser as proxy_parser
from tests.conftest import READY_TIMEOUT_S, Cluster, ServerProc, free_port, tcp, wait_until
from tests.integration.admin_support import Admin, bearer, start_admin
from tests.markdown import ROOT, Table, inline_code, section, table_with

TOKEN = "docs-test-token"
ADMIN_DOC = "docs/admin.md"
PROXY_DOC = "docs/proxy.md"


@dataclass
class Setup:
    server: ServerProc
    admin: Admin
    """With a token, on a server that holds at most one sequence (so a second name is a 502)."""
    tokenless: Admin
    """Without a token, on a control socket nobody serves (403 for writes, 503 for reads)."""
    metrics: dict[str, str]
    """Each source's /metrics text, by the document that must list its metrics."""


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    root = Path(tempfile.mkdtemp(prefix="sgdoc", dir="/tmp"))
    cluster = Cluster(root)
    try:
        server = cluster.server(1, 2, extra=["--max-sequences", "1"])
        # A peer, so that the metrics of the peers, the witness record and following are
        # exported too (they exist only with --peer); read once the first poll confirmed.
        other = cluster.server(2, 2)
        peer = start_admin(cluster, other.control, token=TOKEN)
        admin = start_admin(cluster, server.control, token=TOKEN,
                            extra=["--peer", peer.url, "--witness-interval", "0.2"])
        tokenless = start_admin(cluster, tcp(), control_timeout_s=0.2)
        wait_until(lambda: "seqgen_witness_confirmed_timestamp_seconds{"
                   in admin.client().get("/metrics").text,
                   READY_TIMEOUT_S, "the witness record of the peer confirmed", admin.proc)
        metrics = {ADMIN_DOC: admin.client().get("/metrics").text}
        if "--metrics" in proxy_parser()._option_string_actions:
            # The proxy exports metrics only since it has the flag; then its document lists them.
            url = f"http://127.0.0.1:{free_port()}"
            proxy = cluster.proxy([server.bind], extra=["--metrics", url])
            wait_until(lambda: _answers(f"{url}/metrics"), READY_TIMEOUT_S, "proxy /metrics", proxy)
            metrics[PROXY_DOC] = httpx.get(f"{url}/metrics", timeout=5).text
        yield Setup(server, admin, tokenless, metrics)
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)


# ---- endpoints ------------------------------------------------------------------------


def endpoint_table() -> Table:
    return table_with(section(ADMIN_DOC, "Endpoints"), "endpoint", "statuses",
                      where=f"{ADMIN_DOC}, section 'Endpoints'")


def documented_endpoints() -> dict[tuple[str, str], set[int]]:
    """(METHOD, /path) -> the statuses its row lists."""
    found = {}
    for row in endpoint_table().rows:
        code = inline_code(row[0])
        assert code, f"{ADMIN_DOC}, endpoints table: {row[0]!r} is not `METHOD /path`"
        method, _, path = code[0].partition(" ")
        found[(method, path.split("?")[0])] = {int(s) for s in re.findall(r"\b[1-5]\d\d\b", row[1])}
    return found


def test_every_endpoint_of_the_openapi_document_is_documented_with_its_statuses(setup: Setup) -> None:
    schema = setup.admin.client().get("/openapi.json").json()
    documented = documented_endpoints()
    problems = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            key = (method.upper(), path)
            statuses = {int(code) for code in operation["responses"]}
            if key not in documented:
                problems.append(f"`{method.upper()} {path}` (statuses {sorted(statuses)}) is missing")
            elif documented[key] != statuses:
                problems.append(f"`{method.upper()} {path}`: the table says {sorted(documented[key])}, "
                                f"the OpenAPI document {sorted(statuses)}")
    assert not problems, f"{ADMIN_DOC}, endpoints table:\n  " + "\n  ".join(problems)


def test_every_documented_endpoint_exists(setup: Setup) -> None:
    """Rows the OpenAPI document does not describe (/docs, /) must answer as documented."""
    schema = setup.admin.client().get("/openapi.json").json()
    described = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    problems = []
    with setup.admin.client() as client:
        for (method, path), statuses in documented_endpoints().items():
            if (method, path) in described:
                continue
            got = client.request(method, path).status_code
            if got not in statuses:
                problems.append(f"`{method} {path}` answers {got}, not one of {sorted(statuses)}")
    assert not problems, f"{ADMIN_DOC}, endpoints table:\n  " + "\n  ".join(problems)


def test_the_listed_operation_ids_are_those_of_the_openapi_document(setup: Setup) -> None:
    schema = setup.admin.client().get("/openapi.json").json()
    ids = {op["operationId"] for ops in schema["paths"].values() for op in ops.values()}
    paragraph = next(p for p in section(ADMIN_DOC, "OpenAPI and `/docs`").split("\n\n")
                     if "operation ids are" in p)
    listed = set(inline_code(paragraph.split("operation ids are", 1)[1]))
    assert listed == ids, (f"{ADMIN_DOC}, 'OpenAPI and `/docs`': missing {sorted(ids - listed)}, "
                           f"not in the OpenAPI document {sorted(listed - ids)}")


# ---- status codes and error bodies ----------------------------------------------------------


def _floor(value: str) -> bytes:
    return json.dumps({"value": value}).encode()


def _put_floor(admin: Admin, name: str, body: bytes, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Content-Type": "application/json", **(bearer(token) if token else {})}
    with admin.client() as client:
        return client.put(f"/sequences/{name}/floor", content=body, headers=headers)


def _conflict(s: Setup) -> httpx.Response:
    assert _put_floor(s.admin, "x", _floor("10")).status_code == 200
    return _put_floor(s.admin, "x", _floor("5"))


def _second_name(s: Setup) -> httpx.Response:
    _put_floor(s.admin, "x", _floor("10"))  # the one sequence this server may hold
    return _put_floor(s.admin, "y", _floor("10"))


PROBES: dict[int, Callable[[Setup], httpx.Response]] = {
    200: lambda s: s.admin.client().get("/status"),
    400: lambda s: _put_floor(s.admin, "x", b'{"value": "\xff"}'),
    401: lambda s: _put_floor(s.admin, "x", _floor("1"), token="wrong"),
    403: lambda s: _put_floor(s.tokenless, "x", _floor("1"), token=TOKEN),
    404: lambda s: s.admin.client().get("/sequences/nope"),
    409: _conflict,
    413: lambda s: _put_floor(s.admin, "x", b'{"value": "1"' + b" " * 5000 + b"}"),
    422: lambda s: _put_floor(s.admin, "x", b"not json"),
    502: _second_name,
    503: lambda s: s.tokenless.client().get("/status"),
}
"""A request that gets each status, as the status table of docs/admin.md describes it."""


def status_table() -> Table:
    heading = "Status codes and error bodies"
    return table_with(section(ADMIN_DOC, heading), "status", "when", "body",
                      where=f"{ADMIN_DOC}, section {heading!r}")


def body_mismatch(documented: str, response: httpx.Response) -> str | None:
    """Why ``response`` is not the body the table documents (None when it is)."""
    codes = inline_code(documented)
    if not codes:
        return None  # words, not an example: "the endpoint's answer"
    example = codes[0]
    kind = response.headers.get("content-type", "")
    if not example.startswith("{"):
        wanted = codes[1] if len(codes) > 1 else "text/plain"
        if not kind.startswith(wanted) or response.text != example:
            return f"documented {wanted} {example!r}, got {kind} {response.text!r}"
        return None
    if not kind.startswith("application/json"):
        return f"documented a JSON body, got {kind} {response.text!r}"
    body = response.json()
    key = re.match(r'\{"(\w+)":', example)
    assert key is not None and key.group(1) == "detail", f"an error body is {{\"detail\": ...}}: {example!r}"
    keys = set(re.findall(r'"(\w+)": ', example)) - {"type", "loc", "msg"}
    if not isinstance(body, dict) or set(body) != keys:
        return f"documented {example!r}, got {response.text!r}"
    detail = body["detail"]
    if '"detail": [' in example:
        kind_of = re.search(r'"type": "(\w+)"', example)
        if not isinstance(detail, list) or (kind_of and detail[0].get("type") != kind_of.group(1)):
            return f"documented a list of validation errors like {example!r}, got {response.text!r}"
        return None
    text = re.search(r'"detail": "(.*?)"(?:}|, ")', example)
    assert text, f"cannot read the example {example!r}"
    prefix = text.group(1).split("...")[0]
    if not isinstance(detail, str) or not (detail == text.group(1) or
                                           ("..." in text.group(1) and detail.startswith(prefix))):
        return f"documented {example!r}, got {response.text!r}"
    return None


def test_every_documented_status_comes_with_the_documented_body_and_headers(setup: Setup) -> None:
    rows = {int(inline_code(row[0])[0]): row for row in status_table().rows}
    assert set(rows) == set(PROBES), (
        f"{ADMIN_DOC}'s status table lists {sorted(rows)}; this test probes {sorted(PROBES)}: "
        "document the missing statuses or add a probe for the new one")
    problems = []
    for status in sorted(PROBES, key=lambda s: s == 503):  # the server-down probe last
        response = PROBES[status](setup)
        _, when, body = rows[status][:3]
        if response.status_code != status:
            problems.append(f"{status}: the probe got {response.status_code} {response.text!r}")
            continue
        if (why := body_mismatch(body, response)) is not None:
            problems.append(f"{status}: {why}")
        for header in (c for c in inline_code(when) if re.fullmatch(r"[A-Z][\w-]+: \S.*", c)):
            name, _, value = header.partition(": ")
            if response.headers.get(name) != value:
                problems.append(f"{status}: documented `{header}`, got {response.headers.get(name)!r}")
    assert not problems, f"{ADMIN_DOC}, status table:\n  " + "\n  ".join(problems)


def test_the_openapi_statuses_are_all_in_the_status_table(setup: Setup) -> None:
    schema = setup.admin.client().get("/openapi.json").json()
    used = {int(code) for ops in schema["paths"].values() for op in ops.values()
            for code in op["responses"]}
    listed = {int(inline_code(row[0])[0]) for row in status_table().rows}
    assert used <= listed, (f"{ADMIN_DOC}'s status table lacks {sorted(used - listed)}, "
                            "which the OpenAPI document uses")


# ---- metrics ----------------------------------------------------------------------------

_TYPE = re.compile(r"^# TYPE (\S+) (\S+)$", re.MULTILINE)
_SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s", re.MULTILINE)
_DOCUMENTED = re.compile(r"((?:seqgen|process)_[a-z0-9_]+)(?:\{([^}]*)\})?")
"""A metric name in a document: seqgen's own, or prometheus-client's process metrics."""
_PACKAGES = {path.name for path in ROOT.glob("seqgen_*") if path.is_dir()}
_SUFFIXES = ("_total", "_count", "_sum", "_bucket", "_created", "_max")


def exported(text: str) -> dict[str, set[str]]:
    """Each metric family of an exposition (by its # TYPE name) and its label names.

    A ``X_created`` gauge that prometheus-client adds for a counter or histogram X is part
    of X, not a family of its own."""
    families = dict.fromkeys(name for name, _ in _TYPE.findall(text))
    labels: dict[str, set[str]] = {name: set() for name in families}
    for sample, label_text in _SAMPLE.findall(text):
        family = next((f for f in families if sample == f or (sample.startswith(f) and
                       sample[len(f):] in _SUFFIXES)), None)
        if family is not None and label_text:
            labels[family] |= {part.split("=")[0] for part in label_text.split(",")} - {"le", "quantile"}
    for name in list(labels):
        base = name.removesuffix("_created")
        if base != name and ({base, f"{base}_total"} & set(labels)):
            del labels[name]
    return labels


def mentioned(text: str) -> dict[str, set[str]]:
    """Every metric name in inline code of ``text``, with the labels written after it."""
    found: dict[str, set[str]] = {}
    for code in inline_code(text):
        for match in _DOCUMENTED.finditer(code):
            name, after = match.group(1), code[match.end():match.end() + 1]
            if name in _PACKAGES or after in (".", "/"):
                continue  # a module (seqgen_client.cli), not a metric
            labels = {p.split("=")[0].strip() for p in (match.group(2) or "").split(",") if p.strip()}
            found.setdefault(name, set()).update(labels)
    return found


def _family_of(name: str, families: dict[str, set[str]]) -> str | None:
    if name in families:
        return name
    for suffix in ("_count", "_sum", "_bucket"):
        if name.endswith(suffix) and name.removesuffix(suffix) in families:
            return name.removesuffix(suffix)
    return None


@pytest.mark.parametrize("doc", [ADMIN_DOC, PROXY_DOC])
def test_every_exported_metric_is_documented_with_its_labels(setup: Setup, doc: str) -> None:
    if doc not in setup.metrics:
        assert doc == PROXY_DOC  # the proxy has no --metrics flag: it exports nothing to document
        return
    families = exported(setup.metrics[doc])
    documented = mentioned(section(doc, "Metrics"))
    problems = []
    for family, labels in families.items():
        mentions = [n for n in documented if _family_of(n, {family: labels}) == family]
        if not mentions:
            problems.append(f"`{family}` is exported but not documented")
        elif labels and not any(labels <= documented[n] for n in mentions):
            problems.append(f"`{family}` has the labels {{{','.join(sorted(labels))}}}; "
                            "no mention lists them all")
    assert not problems, f"{doc}, section 'Metrics':\n  " + "\n  ".join(problems)


def test_every_documented_metric_is_exported(setup: Setup) -> None:
    """Every seqgen_* metric named in inline code in any document is one a process exports."""
    families: dict[str, set[str]] = {}
    for text in setup.metrics.values():
        families.update(exported(text))
    problems = []
    for path in sorted(ROOT.glob("*.md")) + sorted((ROOT / "docs").glob("*.md")):
        for name, labels in mentioned(path.read_text(encoding="utf-8")).items():
            family = _family_of(name, families)
            if family is None:
                problems.append(f"{path.relative_to(ROOT)}: `{name}` is not exported")
            elif not labels <= families[family]:
                problems.append(f"{path.relative_to(ROOT)}: `{name}` has no label "
                                f"{sorted(labels - families[family])}")
    assert not problems, "\n  ".join(["documented metrics that do not exist:", *problems])


def test_the_metrics_parsers_read_what_they_must() -> None:
    """The two readers above, on a known exposition (so a silent parse cannot pass)."""
    text = ("# TYPE seqgen_a_total counter\nseqgen_a_total{outcome=\"OK\"} 1.0\n"
            "# TYPE seqgen_a_created gauge\nseqgen_a_created{outcome=\"OK\"} 1.0\n"
            "# TYPE seqgen_b_seconds histogram\nseqgen_b_seconds_bucket{le=\"1.0\",route=\"/\"} 1.0\n")
    assert exported(text) == {"seqgen_a_total": {"outcome"}, "seqgen_b_seconds": {"route"}}
    text = "`seqgen_a_total{outcome}`, `seqgen_client.cli` and `rate(seqgen_b_seconds_sum[5m])`"
    assert mentioned(text) == {"seqgen_a_total": {"outcome"}, "seqgen_b_seconds_sum": set()}
