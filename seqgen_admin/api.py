"""The admin's JSON endpoints (docs/admin.md); each one is a control call and a model.

Errors from the control client become HTTP statuses in one place
(``http_status_for`` / ``on_seqgen_error``): no answer -> 503, unknown name
-> 404, a floor below what was issued -> 409, the server's own failure -> 502.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Final
from urllib.parse import unquote_to_bytes

import anyio.from_thread
from fastapi import APIRouter, Depends, Path, Query, Request, Security, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import AfterValidator
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.routing import BaseRoute

from seqgen_admin.auth import bearer, check_write_access
from seqgen_admin.config import AdminConfig
from seqgen_admin.control_client import ControlClient
from seqgen_admin.models import (
    FloorRequest,
    Health,
    Problem,
    Ready,
    Sequence,
    SequenceList,
    ServerStatus,
    check_name,
    page_out,
    ready_out,
    sequence_out,
    status_out,
)
from seqgen_common.control import MAX_PAGE, Status
from seqgen_common.errors import Conflict, NotFound, RequestError, SeqgenError, Unavailable
from seqgen_common.limits import MAX_NAME_BYTES
from seqgen_common.protocol import NAME_PATTERN

__all__ = ["AdminState", "http_status_for", "needs_token", "on_seqgen_error", "router"]

RETRY_AFTER_S: Final = 1


@dataclass
class AdminState:
    """What the endpoints share: the config, the control client (while running), the registry."""

    config: AdminConfig
    registry: CollectorRegistry
    control: ControlClient | None = field(default=None)

    @property
    def client(self) -> ControlClient:
        if self.control is None:
            raise Unavailable("the admin is not connected to its server")
        return self.control

    async def status_or_none(self) -> Status | None:
        try:
            return await self.client.status()
        except SeqgenError:
            return None

    def status_from_thread(self) -> Status | None:
        """The server's status, asked from a worker thread (the metrics collector)."""
        return anyio.from_thread.run(self.status_or_none)


def get_state(request: Request) -> AdminState:
    state = request.app.state.admin
    assert isinstance(state, AdminState)
    return state


State = Annotated[AdminState, Depends(get_state)]


class _NameConvertor(StringConvertor):
    """A path segment that may hold anything, '/' and line breaks included (``{name:seqname}``).

    Starlette's ``path`` convertor stops at a line break, so a name with one
    would answer 404 instead of the 422 every other invalid name gets.
    """

    regex = r"[\s\S]*"


register_url_convertor("seqname", _NameConvertor())

_NameInPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_NAME_BYTES,
        pattern=NAME_PATTERN,
        description="The sequence name: 1 to 200 UTF-8 bytes, no control characters "
        "(percent-encode it in the URL; it may contain '/').",
    ),
    AfterValidator(check_name),
]


async def sequence_name(request: Request, name: _NameInPath) -> str:
    """The name in the path; 422 when its percent-encoding is not UTF-8.

    (Starlette decodes invalid bytes to U+FFFD, which would name another sequence.)
    """
    try:
        unquote_to_bytes(request.scope["raw_path"].decode("latin-1")).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestValidationError([{
            "type": "value_error", "loc": ("path", "name"), "input": name,
            "msg": "the name's percent-encoding is not UTF-8",
        }]) from exc
    return name


SequenceName = Annotated[str, Depends(sequence_name)]


# ---- errors -----------------------------------------------------------------------


def http_status_for(exc: SeqgenError) -> int:
    """The HTTP status that reports a control call's failure."""
    if isinstance(exc, Unavailable):
        return status.HTTP_503_SERVICE_UNAVAILABLE
    if isinstance(exc, NotFound):
        return status.HTTP_404_NOT_FOUND
    if isinstance(exc, Conflict):
        return status.HTTP_409_CONFLICT
    if isinstance(exc, RequestError):
        return status.HTTP_400_BAD_REQUEST
    return status.HTTP_502_BAD_GATEWAY


async def on_seqgen_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SeqgenError)
    code = http_status_for(exc)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if code == 503 else None
    return JSONResponse({"detail": exc.message}, status_code=code, headers=headers)


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


SERVER_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    502: _problem("The server answered with a failure of its own (for example its store "
                  "cannot persist)."),
    503: _problem("The server did not answer in time (down, stopped or overloaded); "
                  "retry later (see Retry-After)."),
}


async def require_writer(
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> None:
    """The token of a write (seqgen_admin.guard checks it again before the body is read)."""
    check_write_access(state.config.token, credentials)


def needs_token(route: BaseRoute) -> bool:
    """Whether ``route`` is a write: it depends on ``require_writer``."""
    return isinstance(route, APIRoute) and any(
        dependency.call is require_writer for dependency in route.dependant.dependencies)


# ---- endpoints --------------------------------------------------------------------

router = APIRouter()


@router.get("/healthz", tags=["health"], summary="The admin process is alive")
async def healthz() -> Health:
    """Answers without asking the server: for a liveness probe of the admin itself."""
    return Health(status="ok")


@router.get("/readyz", tags=["health"], summary="The server answers", responses=SERVER_ERRORS)
async def readyz(state: State) -> Ready:
    """200 when the server answers a ping on its control socket, 503 when it does not."""
    return ready_out(await state.client.ping())


@router.get("/status", tags=["server"], summary="The server's status and counters",
            responses=SERVER_ERRORS)
async def get_status(state: State) -> ServerStatus:
    return status_out(await state.client.status())


@router.get("/sequences", tags=["sequences"], summary="A page of sequences",
            responses=SERVER_ERRORS)
async def list_sequences(
    state: State,
    prefix: Annotated[str, Query(max_length=MAX_NAME_BYTES,
                                 description="Only names that start with this.")] = "",
    cursor: Annotated[str | None, Query(max_length=MAX_NAME_BYTES,
                                        description="`next_cursor` of the previous page: "
                                        "names after this one.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")] = 100,
) -> SequenceList:
    """Sequences in name order (UTF-8 byte order) with their current values, page by page."""
    return page_out(await state.client.list_sequences(prefix, cursor, limit))


# Before GET /sequences/{name}: "/sequences/a/floor" is also the sequence "a/floor", and the
# first route that matches a path gives a 405 its Allow header; here that is the floor's PUT.
@router.put(
    "/sequences/{name:seqname}/floor",
    tags=["sequences"],
    dependencies=[Depends(require_writer)],
    summary="Move a sequence forward",
    responses={
        400: _problem("The body could not be read as JSON (for example, not UTF-8)."),
        401: _problem("The Authorization header is missing or the token is wrong."),
        403: _problem("Writes are disabled: seqgen-admin runs without a token."),
        409: _problem("Numbers above the value were already issued; nothing changed."),
        **SERVER_ERRORS,
    },
)
async def raise_floor(state: State, name: SequenceName, body: FloorRequest) -> Sequence:
    """The next number issued for ``name`` will be greater than ``value``.

    Forward only: a value below what was already issued is refused (409) and
    changes nothing; the same value again is accepted (idempotent). The floor
    is durable on the server before this answers. A name the server has not
    seen yet is created. After a 503 the outcome is unknown: read the sequence
    or send the same request again.
    """
    return sequence_out(await state.client.raise_floor(name, int(body.value)))


@router.get("/sequences/{name:seqname}", tags=["sequences"], summary="One sequence",
            responses={404: _problem("The server has no sequence of that name."),
                       **SERVER_ERRORS})
async def get_sequence(state: State, name: SequenceName) -> Sequence:
    return sequence_out(await state.client.get_sequence(name))


@router.get(
    "/metrics",
    tags=["metrics"],
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                     "description": "Prometheus text exposition format."}},
)
async def metrics(state: State) -> Response:
    """The server's counters as ``seqgen_*`` (asked at scrape time; ``seqgen_server_up 0``
    and nothing else of the server's when it does not answer) and the admin's own
    ``seqgen_admin_http_*`` metrics."""
    body = await run_in_threadpool(generate_latest, state.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
