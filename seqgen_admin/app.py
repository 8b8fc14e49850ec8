"""The app factory ``create_app(config)`` and ``run(config)``, which serves it with uvicorn.

The lifespan opens the control client when the app starts and closes it when
it stops; uvicorn handles SIGTERM and SIGINT (graceful shutdown, exit 0).
``/docs`` is Swagger UI 5 from the assets that ``fastapi-offline`` ships, so
it renders FastAPI's OpenAPI 3.1 schema with no internet access.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType

import uvicorn
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry

from seqgen_admin import problems
from seqgen_admin.api import AdminState, needs_token, on_seqgen_error, router
from seqgen_admin.auth import check_write_access
from seqgen_admin.config import AdminConfig
from seqgen_admin.connguard import ConnectionCollector, ConnectionLimits, guarded_protocol
from seqgen_admin.control_client import ControlClient
from seqgen_admin.guard import MAX_BODY_BYTES, ExplainTooLarge, WriteGuard
from seqgen_admin.metrics import (
    ClusterCollector,
    HttpMetrics,
    HttpMetricsMiddleware,
    ServerCollector,
    WitnessCollector,
)
from seqgen_admin.page import page_router
from seqgen_admin.plane import Plane
from seqgen_admin.resize_api import resize_router
from seqgen_admin.tls import tell_plain_http, uvicorn_options
from seqgen_common import __version__
from seqgen_common.errors import SeqgenError
from seqgen_common.logs import describe_settings, settings

__all__ = ["create_app", "run"]

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 100
MAX_IDLE_CONNECTIONS = MAX_CONNECTIONS // 2
"""Idle connections kept at most (no request being answered): a new one closes the longest idle."""
"""Connections (and requests in progress) the admin serves at once; more get 503."""

DESCRIPTION = """\
Admin and status API of one **seqgen-server**, spoken to over its private control socket.

* Sequence values are 64-bit and travel as strings of decimal digits.
* Writes (`PUT /sequences/{name}/floor`, `POST /fence`, `/unfence`, `/recover`) and
  `GET /backup` need `Authorization: Bearer <token>` (the token of seqgen-admin's
  `SEQGEN_ADMIN_TOKEN`); without a configured token they are refused (403).
* The operator's plane: `/cluster` (this server and its peers, misconfigurations),
  `/witness/{instance}`, fences, recovery and backups (docs/operations.md).
* While the server does not answer, every endpoint that needs it answers 503 within the control timeout.
* The human status page is at [`/`](/), Prometheus metrics at [`/metrics`](/metrics).
"""


def _operation_id(route: APIRoute) -> str:
    """OpenAPI operationIds are the endpoint functions' names (get_status, raise_floor...)."""
    return route.name


def create_app(config: AdminConfig) -> FastAPI:
    """A new admin app for ``config`` (its control client opens in the lifespan)."""
    registry = CollectorRegistry(auto_describe=False)
    plane = Plane(config)
    state = AdminState(config=config, registry=registry, plane=plane)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with ControlClient(config.control, timeout_s=config.control_timeout_s) as client:
            state.control = client
            writes = "need the token" if config.token else "disabled (no token)"
            log.info("seqgen-admin %s: writes %s; %s", __version__, writes,
                     describe_settings(config),
                     extra={"version": __version__, "writes": writes, "config": settings(config)})
            await plane.start(client)
            try:
                yield
            finally:
                await plane.stop()
                state.control = None

    app = FastAPIOffline(
        title="seqgen-admin",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        redoc_url=None,
        swagger_ui_parameters={"validatorUrl": None, "tryItOutEnabled": False},
        generate_unique_id_function=_operation_id,
        max_body_size=MAX_BODY_BYTES,  # 413 before a larger body is read
    )
    app.state.admin = state
    registry.register(ServerCollector(state.status_from_thread))
    registry.register(ClusterCollector(plane.state))
    registry.register(WitnessCollector(lambda: plane.witness))
    app.state.connections = ConnectionLimits(config.header_timeout_s,
                                             config.max_connections_per_client,
                                             max_idle=MAX_IDLE_CONNECTIONS)
    registry.register(ConnectionCollector(app.state.connections))
    app.add_middleware(
        WriteGuard, routes=lambda: [*router.routes, *resize_router.routes], needs_token=needs_token,
        check=lambda credentials: check_write_access(config.token, credentials),
    )
    app.add_middleware(HttpMetricsMiddleware, metrics=HttpMetrics(registry))  # outermost
    app.add_exception_handler(SeqgenError, on_seqgen_error)
    problems.install(app)  # 422: a sentence, not pydantic's list
    app.include_router(router)
    app.include_router(resize_router)
    app.include_router(page_router())
    return app


class _Server(uvicorn.Server):
    """uvicorn's server, except that a shutdown asked by SIGTERM/SIGINT exits 0.

    (uvicorn re-raises the signal after its graceful shutdown, so the process
    would end "killed by SIGTERM"; the seqgen daemons end with status 0.)
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Only flags, as uvicorn's own handler: a second SIGINT forces the exit.
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True


def run(config: AdminConfig) -> int:
    """Serve the admin until SIGTERM or SIGINT; the exit status."""
    app = create_app(config)
    settings = uvicorn.Config(
        ExplainTooLarge(app),  # 413 as a sentence too (seqgen_admin.guard)
        host=config.host,
        port=config.port,
        log_config=None,  # seqgen_common.logs.setup (daemon.start) formats everything
        log_level=config.log_level.lower(),
        server_header=False,
        lifespan="on",
        limit_concurrency=MAX_CONNECTIONS,  # beyond: 503 at once
        timeout_keep_alive=5,
        http=guarded_protocol(app.state.connections,  # seqgen_admin.connguard
                              client_certificate=config.tls.client_ca is not None),
        **uvicorn_options(config.tls),  # HTTPS (and mutual TLS) with --tls-*
    )
    server = _Server(settings)
    try:
        settings.load()  # its TLS context, which then answers plain HTTP in words
        if settings.ssl is not None:
            tell_plain_http(settings.ssl)
        server.run()
    except SystemExit as exc:  # uvicorn exits 3 when it cannot start (a port in use...): 1, as
        return 1 if exc.code else 0  # every seqgen daemon whose start fails (it logged why)
    return 0 if server.started else 1
