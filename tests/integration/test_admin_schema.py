"""A property-based run (schemathesis) over seqgen-admin's OpenAPI schema against a real server.

The schema is the app's own (built in-process, no sockets; a test checks the
running admin serves the same one). Every generated request, valid or not,
must get a documented status whose body matches the documented schema, and
never a 5xx: the server is up, so not even 503. The admin has a peer (a second
server and its admin, peered back) that has witnessed it, so the operator's
endpoints (/cluster, /witness, /changes, /fence, /unfence, /recover, /backup)
all do their real work.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from seqgen_admin.app import create_app
from seqgen_admin.config import AdminConfig
from tests.conftest import Cluster, numbers, wait_until
from tests.integration.admin_support import bearer
from tests.integration.operator_support import free_admin_url, start_host

TOKEN = "schema-token"

OPENAPI = create_app(AdminConfig(token=TOKEN)).openapi()
schema = schemathesis.openapi.from_dict(OPENAPI)


@pytest.fixture(scope="module")
def admin_url() -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="sgs", dir="/tmp"))
    cluster = Cluster(root)
    try:
        urls = [free_admin_url(), free_admin_url()]
        host = start_host(cluster, 1, 2, urls[0], [urls[1]], token=TOKEN)
        peer = start_host(cluster, 2, 2, urls[1], [urls[0]], token=TOKEN)
        for name in ("a", "a/b", "ab", "b", "x y", "0"):
            numbers(host.server.bind, name, count=3)

        def witnessed() -> bool:
            page = httpx.get(f"{peer.admin.url}/witness/1", params={"prefix": "x"}).json()
            return page["confirmed_at"] is not None and len(page["items"]) == 1

        wait_until(witnessed, 15, "the peer witnessed the server")  # so /recover can succeed
        yield host.admin.url
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)


def test_the_running_admin_serves_this_schema(admin_url: str) -> None:
    assert httpx.get(f"{admin_url}/openapi.json").json() == OPENAPI


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_undocumented_answers_and_no_server_errors(
    admin_url: str, case: schemathesis.Case
) -> None:
    response = case.call_and_validate(base_url=admin_url, headers=bearer(TOKEN))
    assert response.status_code < 500, response.text
