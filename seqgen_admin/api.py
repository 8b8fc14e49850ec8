"""The admin's JSON endpoints (docs/admin.md); each one is a control call and a model.

Errors from the control client become HTTP statuses in one place
(``http_status_for`` / ``on_seqgen_error``): no answer -> 503, unknown name
-> 404, a floor below what was issued -> 409, the server's own failure -> 502.

The operator's plane (docs/operations.md): ``/cluster``, ``/witness/{instance}``
and ``/changes`` (what peers poll) are reads; ``/recover``, ``/fence``,
``/unfence`` and ``/backup`` need the token. The work is in seqgen_admin.plane,
.peers, .witness, .recover and .backup; here only HTTP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Final
from urllib.parse import unquote_to_bytes

import anyio.from_thread
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Security, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import AfterValidator
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.routing import BaseRoute

from seqgen_admin import backup as backups
from seqgen_admin import messages
from seqgen_admin.auth import bearer, check_write_access
from seqgen_admin.config import AdminConfig
from seqgen_admin.control_client import ControlClient
from seqgen_admin.guard import MAX_BODY_BYTES
from seqgen_admin.layout import waiting_to_join
from seqgen_admin.models import (
    Changes,
    ClusterView,
    FenceResult,
    FloorRequest,
    Health,
    PeerAsked,
    PeerState,
    Problem,
    Ready,
    RecoverRequest,
    RecoverResult,
    Sequence,
    SequenceList,
    ServerStatus,
    WitnessPage,
    changes_out,
    check_name,
    fence_out,
    page_out,
    ready_out,
    sequence_out,
    status_out,
    when,
    witness_out,
)
from seqgen_admin.plane import Plane
from seqgen_admin.recover import recover as run_recovery
from seqgen_common.control import MAX_CHANGES_PAGE, MAX_CONSUMER_CHARS, MAX_PAGE, Status
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
    plane: Plane
    control: ControlClient | None = field(default=None)
    backup_lease: backups.Lease = field(default_factory=backups.Lease)

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


Prefix = Annotated[str, Query(max_length=MAX_NAME_BYTES,
                              description="Only names that start with this.")]
Cursor = Annotated[str | None, Query(max_length=MAX_NAME_BYTES,
                                     description="`next_cursor` of the previous page: "
                                     "names after this one.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")]
"""The paging parameters of /sequences and /witness/{instance}."""


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


AUTH_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    401: _problem("The Authorization header is missing or the token is wrong."),
    403: _problem("seqgen-admin runs without a token: it refuses everything that needs one."),
}

BODY_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    400: _problem("The body could not be read as JSON (its bytes are not UTF-8)."),
    413: _problem(f"The body is larger than {MAX_BODY_BYTES // 1024} KiB (refused before it is "
                  "read)."),
}
"""What a route that reads a JSON body may answer before the body reaches it."""

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
    prefix: Prefix = "",
    cursor: Cursor = None,
    limit: Limit = 100,
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
        **BODY_ERRORS,
        **AUTH_ERRORS,
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


# ---- the operator's plane -------------------------------------------------------------


@router.get("/cluster", tags=["cluster"], summary="This server and its peers; misconfigurations")
async def get_cluster(state: State) -> ClusterView:
    """What this server and each peer (`--peer`) say of themselves, and the conflicts among
    them. This server is asked now; the peers as of their last poll (every witness interval)."""
    plane = state.plane
    if state.control is not None:
        await plane.refresh_own()
    view = plane.state()
    own = view.own
    status = await state.status_or_none() if state.control is not None else None
    return ClusterView(
        fenced=status.fenced if status else None,
        resize_to=status.resize_to if status else None,
        retired=status.retired if status else None,
        instance=own.instance if own else None, instances=own.instances if own else None,
        version=own.version if own else None, reachable=view.own_reachable,
        witness_interval_s=state.config.witness_interval_s,
        peers=[PeerState(url=p.url, reachable=p.reachable, instance=p.instance,
                         instances=p.instances, version=p.version, fenced=p.fenced,
                         last_seen=when(p.last_seen), error=p.error) for p in view.peers],
        conflicts=view.conflicts,
    )


@router.get("/witness/{instance}", tags=["cluster"], summary="What this host witnessed of an instance",
            responses={404: _problem("This admin has no peers (`--peer`), so it witnesses nothing."),
                       502: _problem("The witness record cannot be read.")})
async def get_witness(
    state: State,
    instance: Annotated[int, Path(ge=1, le=1_000_000, description="The instance witnessed.")],
    prefix: Prefix = "",
    cursor: Cursor = None,
    limit: Limit = 100,
) -> WitnessPage:
    """The highest value this host saw each name of that instance issue, when, and at what
    rate; the record survives restarts of this admin and is what `POST /recover` of that
    instance collects from here."""
    witness = state.plane.witness
    if witness is None:
        raise NotFound("this admin witnesses no peers: start it with --peer")
    known = await run_in_threadpool(witness.state, instance)
    now = time.time()
    at = known.lost_at if known.lost_at is not None else now  # rates as they were at the loss
    items, next_cursor = await run_in_threadpool(witness.page, instance, prefix, cursor, limit, at)
    return witness_out(messages.WitnessPage(
        instance=instance,
        items=[messages.WitnessEntry(name=i.name, value=i.value, seen_at=datetime.fromtimestamp(
            i.seen_at, UTC), rate=i.rate) for i in items],
        next_cursor=next_cursor, interval_s=state.config.witness_interval_s,
        confirmed_at=when(known.confirmed_at), lost_at=when(known.lost_at),
        stale_s=known.stale_s(now),
    ))


@router.get("/changes", tags=["cluster"], summary="The change feed that peers' witnesses poll",
            responses=SERVER_ERRORS)
async def get_changes(
    state: State,
    consumer: Annotated[str, Query(min_length=1, max_length=MAX_CONSUMER_CHARS,
                                   description="The polling witness: any id, the same for "
                                   "every poll.")],
    epoch: Annotated[str, Query(max_length=64, description="The `epoch` of the last page "
                                "received (empty at first).")] = "",
    ack: Annotated[int, Query(ge=0, description="The `seq` of the last page stored.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_CHANGES_PAGE, description="Page size.")] = 1000,
) -> Changes:
    """Names whose value changed since the consumer's last acknowledged page, with their
    current values. `resync` asks the consumer to read every sequence first. A page that is
    not acknowledged is sent again."""
    page = await state.client.watch_changes(consumer, epoch or None, ack, limit)
    follower = state.plane.follower
    if follower is not None:  # what this server's own values are, for free
        follower.learn_own((change.name, change.current) for change in page.items)
    return changes_out(page, state.plane.backwards_seen())


@router.post("/fence", tags=["cluster"], dependencies=[Depends(require_writer)],
             summary="Fence the server: it issues nothing until unfenced or recovered",
             responses={**AUTH_ERRORS, **SERVER_ERRORS})
async def fence(state: State) -> FenceResult:
    """From now on the server's public socket answers every request UNAVAILABLE "fenced"
    (clients move to another server at once); durable before this answers, so the server
    stays fenced across restarts."""
    return fence_out(await state.client.fence())


@router.post("/unfence", tags=["cluster"], dependencies=[Depends(require_writer)],
             summary="Release the fence without recovering",
             responses={**AUTH_ERRORS, 409: _problem(
                 "A resize is unfinished on the server or retired it, or the server is a "
                 "new one waiting for `POST /resize`: it stays fenced."), **SERVER_ERRORS})
async def unfence(state: State) -> FenceResult:
    """Serve numbers again, as they are in the store: only when the store is known to be
    intact (planned maintenance). A server on an empty or restored store needs
    `POST /recover` instead."""
    own, peers = await state.client.status(), state.plane.state().peers
    waiting = waiting_to_join(own.instance, own.instances, [p.instances for p in peers
                                                           if p.reachable and p.instances])
    if waiting is not None and not own.retired and own.resize_to is None:
        raise Conflict(waiting)
    return fence_out(await state.client.unfence())


@router.post(
    "/recover", tags=["cluster"], dependencies=[Depends(require_writer)],
    summary="Raise the floors of a fenced server above what it may have issued, then unfence",
    responses={
        **BODY_ERRORS,
        **AUTH_ERRORS,
        409: _problem("The server is not fenced, the cluster is misconfigured (without "
                      "`force`), no peer gave its record and no margin was given, a floor "
                      "would be implausibly high, or a recovery is already running."),
        502: _problem("The server answered with a failure of its own (for example its store "
                      "cannot persist)."),
        503: _problem("A peer cannot give its part or gave an implausible one (without "
                      "`force`), the recovery did not finish within `--recover-timeout`, or "
                      "the server did not answer. The server stays fenced."),
    },
)
async def recover(
    state: State, http_request: Request, body: Annotated[RecoverRequest | None, Body()] = None,
) -> RecoverResult:
    """For a server started `--fenced` on an empty or restored store: collect every peer's
    own values and its witness record of this instance, raise each witnessed name's floor to
    the highest of them plus a margin (durable), release the fence. docs/operations.md gives
    the margin rule."""
    request = body or RecoverRequest()
    plane = state.plane
    if plane.recovering.locked():
        raise Conflict("a recovery is already running")
    async with plane.recovering:
        outcome = await run_recovery(
            state.client, plane.http, state.config.peers,
            margin=int(request.margin) if request.margin is not None else None,
            force=request.force, deadline_s=state.config.recover_timeout_s,
            still_wanted=lambda: _connected(http_request), known_names=plane.witnessed_names)
    return RecoverResult(
        raised=outcome.raised, largest_jump=str(outcome.largest_jump), margin=str(outcome.margin),
        margin_rule="given" if outcome.margin_given else "default", kept=outcome.kept,
        unwitnessed=outcome.unwitnessed, forced=outcome.forced, fenced=False,
        peers=[PeerAsked(url=p.url, answered=p.answered, error=p.error, witnessed=p.witnessed)
               for p in outcome.peers],
    )


async def _connected(request: Request) -> bool:
    return not await request.is_disconnected()


@router.get(
    "/backup", tags=["cluster"], dependencies=[Depends(require_writer)],
    summary="A consistent snapshot of the server's store",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string",
                                                                   "format": "binary"}}},
              "description": "The snapshot: an SQLite file, marked fenced. Restore it as "
              "seqgen.db and recover (docs/operations.md)."},
        **AUTH_ERRORS,
        409: _problem("Another snapshot is being streamed."),
        **SERVER_ERRORS,
    },
)
async def get_backup(state: State) -> StreamingResponse:
    """SQLite's online backup of the store, made while the server keeps serving, streamed
    with its size (`Content-Length`) and SHA-256 (`X-Seqgen-Sha256`)."""
    holder = object()
    if not state.backup_lease.take(holder):
        raise Conflict("another snapshot is being streamed; try again when it is done")
    try:
        client = state.client
        ready = await client.start_backup(backups.START_TIMEOUT_S)
    except BaseException:
        state.backup_lease.release(holder)
        raise
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        backups.stream(client, ready, state.backup_lease, holder),
        media_type="application/octet-stream",
        headers={"Content-Length": str(ready.size), "X-Seqgen-Sha256": ready.sha256,
                 "Content-Disposition": f'attachment; filename="seqgen-{stamp}.db"'},
    )
