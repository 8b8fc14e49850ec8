"""A property-based run (schemathesis) over seqgen-admin's OpenAPI schema against a real server.

The schema is the app's own (built in-process, no sockets; a test checks the
running admin serves the same one). Every generated request, valid or not,
must get a documented status whose body matches the documented schema, and
never a 5xx: the server is up, so not even 503.
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
from tests.conftest import Cluster, numbers
from tests.integration.admin_support import bearer, start_admin

TOKEN = "schema-token"

OPENAPI = create_app(AdminConfig(token=TOKEN)).openapi()
schema = schemathesis.openapi.from_dict(OPENAPI)


@pytest.fixture(scope="module")
def admin_url() -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="sgs", dir="/tmp"))
    cluster = Cluster(root)
    try:
        server = cluster.server()
        for name in ("a", "a/b", "ab", "b", "x y", "0"):
            numbers(server.bind, name, count=3)
        yield start_admin(cluster, server.control, token=TOKEN).url
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
