"""The admin's resize endpoints: ``POST /resize`` (the operator's) and ``POST /resize/step``
(one step on this admin's own server, for the admin that coordinates). seqgen_admin.resize
does the work; docs/admin.md documents both."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Final, Literal

from fastapi import APIRouter, Body, Depends
from pydantic import Field

from seqgen_admin import messages
from seqgen_admin.api import AUTH_ERRORS, BODY_ERRORS, SERVER_ERRORS, State, _problem, require_writer
from seqgen_admin.derive import derive, to_model
from seqgen_admin.models import VALUE_PATTERN, _Model
from seqgen_admin.resize import Step, coordinate, parts, run_step
from seqgen_admin.resize_lost import local_witness
from seqgen_admin.resize_retire import coordinate_lost
from seqgen_common.errors import Conflict

__all__ = ["resize_router"]

MAX_INSTANCES: Final = 1000

resize_router = APIRouter()

Count = Annotated[int, Field(ge=1, le=MAX_INSTANCES)]


class ResizeRequest(_Model):
    instances: Count = Field(description="The number of servers wanted: one more (grow) or "
                             "one fewer (shrink, instance N retires) than now.")
    retiring_lost: bool = Field(default=False, strict=True, description="A shrink whose "
                                "retiring server (instance N) is lost for good: go on without "
                                "it, covering its numbers by the survivors' witness records of "
                                "it + the margin (docs/operations.md). Only on your word: never "
                                "because a server does not answer.")
    margin: Annotated[str | None, Field(
        pattern=VALUE_PATTERN, max_length=64, examples=["100000"],
        description="With `retiring_lost` only: decimal digits added to every name instead of "
        "the default margin. Required when no surviving admin holds a witness record of the "
        "lost instance.")] = None


class ResizeStepRequest(_Model):
    step: Literal["state", "prepare", "preraise", "drain", "begin", "floors", "commit", "end",
                  "abort", "witnessed", "lostfloors"] = Field(
        description="The step (docs/protocol.md, \"Changing the number of servers\").")
    instances: Count = Field(description="The number of servers the resize goes to.")
    retire: bool = Field(default=False, strict=True,
                         description="`commit`: this server retires (a shrink).")
    margin: int = Field(default=0, ge=0, le=10**15,
                        description="`preraise`, `floors`: added to the highest value of each "
                        "name.")
    servers: int = Field(default=0, ge=0, le=MAX_INSTANCES + 1,
                         description="`floors`: how many servers the resize has: this admin "
                         "must read instances 1 to `servers` (its own server and its peers). "
                         "`abort`: the count the cluster goes back to.")
    token: str = Field(default="", max_length=32, pattern="^[0-9a-f]*$",
                       description="`prepare`, `floors`: the resize's id; `floors` uses what "
                       "`prepare` read with the same token (else it reads every server).")
    lost: str = Field(default="", max_length=2000, description="`witnessed`, `lostfloors`: "
                      "the lost server's admin URL (this admin does not read it).")
    margin_given: bool = Field(default=False, strict=True, description="`lostfloors`: "
                               "`margin` is the operator's (else the default rule).")


if TYPE_CHECKING:  # for type checkers: the fields are made from the message at import
    class LayoutOut(_Model): ...
else:
    LayoutOut = derive(messages.StepAnswer, "LayoutOut")


class ServerResized(LayoutOut):
    who: str = Field(description="`this server` or the peer's admin URL.")


class ResizeResult(_Model):
    instances: int = Field(description="The number of servers now.")
    previous: int = Field(description="The number before this resize.")
    already: bool = Field(description="True when the cluster had this number already and "
                          "nothing was unfinished: nothing was done.")
    names: int = Field(description="Names that got a boundary.")
    largest_jump: str = Field(description="The largest boundary minus a server's value before "
                              "(decimal digits).")
    margin: str = Field(description="The margin above every server's value: 10 x drift x "
                        "the larger count (decimal digits).")
    retired: str | None = Field(description="Who retired (a shrink): `this server` or a peer's "
                                "admin URL.")
    fenced_s: float = Field(default=0.0, description="Seconds from the fence to its release "
                            "(as this admin timed the steps; 0 when nothing was done).")
    prepared: bool = Field(default=False, description="Every server was read before the fence, "
                           "so the fence only waited for what changed since.")
    steps: dict[str, float] = Field(default_factory=dict, description="Seconds each step "
                                    "took, on every server at once.")
    undone: int | None = Field(default=None, description="The count of the unfinished resize "
                               "that this request undid (null: none).")
    servers: list[ServerResized] = Field(description="Each server's layout afterwards.")


_RESIZE_ERRORS: Final = {
    **BODY_ERRORS, **AUTH_ERRORS,
    409: _problem("The servers cannot go to that number now (not one more or one fewer, the "
                  "new server missing or not fenced, two servers with one instance, another "
                  "resize unfinished, an admin not peered with every other), or a resize is "
                  "already running on this admin. Before the first step nothing changed; "
                  "after it, the message says so and the same request finishes it."),
    502: _problem("A server answered with a failure of its own (for example its store "
                  "cannot persist)."),
    503: _problem("A server or a peer's admin did not answer. Before the first step nothing "
                  "changed; after it the servers stay fenced and the same request finishes it."),
}


@resize_router.post("/resize", tags=["cluster"], dependencies=[Depends(require_writer)],
                    summary="Change the number of servers by one while the cluster serves",
                    responses=_RESIZE_ERRORS)
async def resize(state: State, body: Annotated[ResizeRequest, Body()]) -> ResizeResult:
    """Grow (start instance N+1 fenced and peered first) or shrink (instance N retires) the
    cluster: every server is fenced for a moment, every name gets a boundary above every
    number issued, the new layout is recorded, the fence released. docs/operations.md gives
    the procedure; the answer says what was done."""
    lock = state.plane.resizing
    if lock.locked():
        raise Conflict("a resize is already running on this admin")
    if body.margin is not None and not body.retiring_lost:
        raise Conflict("margin is only for a shrink with retiring_lost (a resize of servers "
                       "that answer reads them all: it needs no margin of yours)")
    servers = parts(state.client, state.plane.http, state.config.peers, state.plane.quiet,
                    state.plane.resize_prep, own_witness=local_witness(
                        state.plane.witness, state.config.witness_interval_s))
    async with lock:
        if body.retiring_lost:
            outcome = await coordinate_lost(servers, body.instances, None if body.margin is None
                                            else int(body.margin))
        else:
            outcome = await coordinate(servers, body.instances)
    return ResizeResult(
        instances=outcome.instances, previous=outcome.old, already=outcome.done_already,
        names=outcome.names, largest_jump=str(outcome.largest_jump), margin=str(outcome.margin),
        retired=outcome.retired, fenced_s=round(outcome.fenced_s, 3), prepared=outcome.prepared,
        undone=outcome.undone, steps=outcome.steps,
        servers=[ServerResized(who=who, **to_model(answer, LayoutOut).model_dump())
                 for who, answer in outcome.servers])


@resize_router.post("/resize/step", tags=["cluster"], dependencies=[Depends(require_writer)],
                    summary="One step of a resize on this admin's server (for the coordinator)",
                    responses={**BODY_ERRORS, **AUTH_ERRORS,
                               409: _problem("The step is out of order here, or this admin "
                                             "does not read every server."),
                               **SERVER_ERRORS})
async def resize_step(state: State, body: Annotated[ResizeStepRequest, Body()]) -> LayoutOut:
    """The admin that coordinates a `POST /resize` sends each step to every admin; every
    step is idempotent and durable before this answers."""
    step: Step = body.step
    answer = await run_step(state.client, state.plane.http, state.config.peers, step,
                            instances=body.instances, retire=body.retire, margin=body.margin,
                            servers=body.servers, token=body.token, quiet=state.plane.quiet,
                            preparations=state.plane.resize_prep, lost=body.lost,
                            margin_given=body.margin_given,
                            own_witness=local_witness(state.plane.witness,
                                                      state.config.witness_interval_s))
    return to_model(answer, LayoutOut)
