"""The app in-process (httpx's ASGI transport, no sockets, no lifespan, so no server):
error mapping, what works without a server, the schema, the docs and the page."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from seqgen_admin.api import http_status_for
from seqgen_admin.app import create_app
from seqgen_admin.config import AdminConfig
from seqgen_admin.page import status_page_html
from seqgen_common.errors import (
    Conflict,
    InternalError,
    NotFound,
    RequestError,
    SeqgenError,
    Unavailable,
    error_for,
)


@pytest.mark.parametrize(("error", "status"), [
    (Unavailable("down"), 503),
    (NotFound("no such name"), 404),
    (error_for("NOT_FOUND", "as the control client raises it"), 404),
    (Conflict("below what was issued"), 409),
    (RequestError("bad"), 400),
    (InternalError("disk full"), 502),
    (SeqgenError("new code", "SOMETHING_ELSE"), 502),
])
def test_control_errors_map_to_http_statuses(error: SeqgenError, status: int) -> None:
    assert http_status_for(error) == status


def call(*requests: tuple[str, str, dict[str, object]], token: str | None = "tok"
         ) -> list[httpx.Response]:
    app = create_app(AdminConfig(token=token))

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
            return [await client.request(method, url, **kw)  # type: ignore[arg-type]
                    for method, url, kw in requests]

    return asyncio.run(run())


def test_without_a_server_connection_health_works_and_the_rest_is_503() -> None:
    health, ready, status, floor, metrics = call(
        ("GET", "/healthz", {}),
        ("GET", "/readyz", {}),
        ("GET", "/status", {}),
        ("PUT", "/sequences/a/floor", {"json": {"value": "1"},
                                       "headers": {"Authorization": "Bearer tok"}}),
        ("GET", "/metrics", {}),
    )
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    for response in (ready, status, floor):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
    assert metrics.status_code == 200
    assert "seqgen_server_up 0.0" in metrics.text
    assert 'seqgen_admin_http_requests_total{method="GET",route="/status",status="503"} 1.0' \
        in metrics.text


def test_auth_comes_before_the_body_and_the_server() -> None:
    no_token, bad_body = call(
        ("PUT", "/sequences/a/floor", {"json": {"value": "1"}}),
        ("PUT", "/sequences/a/floor", {"json": {"value": "x"}}),
    )
    assert no_token.status_code == 401 and bad_body.status_code == 401
    (disabled,) = call(("PUT", "/sequences/a/floor", {"json": {"value": "1"}}), token=None)
    assert disabled.status_code == 403


def test_schema_docs_and_page() -> None:
    schema, docs, page = call(("GET", "/openapi.json", {}), ("GET", "/docs", {}), ("GET", "/", {}))
    operations = {op["operationId"] for path in schema.json()["paths"].values()
                  for op in path.values()}
    assert operations == {"healthz", "readyz", "get_status", "list_sequences", "get_sequence",
                          "raise_floor", "metrics", "get_cluster", "get_witness", "get_changes",
                          "fence", "unfence", "recover", "resize", "resize_step", "get_backup"}
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    assert "validatorUrl" in docs.text  # no calls to the online validator
    assert page.status_code == 200 and page.text == status_page_html()


def test_status_page_is_self_contained() -> None:
    html = status_page_html()
    assert not re.search(r"(?i)(src|href)\s*=\s*[\"']?(https?:)?//", html)
    assert not re.search(r"(?i)@import|url\(", html)
    assert "innerHTML" not in html  # names are shown as text, never parsed as markup
    for element in ('id="sequences"', 'id="counters"', 'id="prefix"', 'id="next"', 'id="prev"',
                    'id="cluster"', 'id="cluster-banner"', 'id="status-fenced"'):
        assert element in html
