"""``POST /resize`` with ``retiring_lost``: the coordinator of a shrink whose retiring
server (instance N) is lost for good. seqgen_admin.resize_lost has the rule and the
steps; docs/protocol.md says why no number repeats.

Before ``begin`` nothing changes: exactly one admin does not answer and it must be
instance N's (every other server answers as 1..N-1, see ``lost_plan``), and some
surviving admin holds a witness record of instance N unless the margin is given. Then
the survivors are fenced (``begin``), raise their floors (``lostfloors``), record
1..N-1 of N-1 (``commit``) and are released (``end``). A step that fails leaves the
survivors fenced with the resize unfinished; the same request finishes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from seqgen_admin.layout import LayoutNode
from seqgen_admin.messages import StepAnswer
from seqgen_admin.resize import Part, ResizeOutcome, _each
from seqgen_admin.resize_lost import blind, lost_plan
from seqgen_common.errors import Conflict, SeqgenError

__all__ = ["coordinate_lost"]

log = logging.getLogger(__name__)


async def coordinate_lost(servers: Sequence[Part], target: int, margin: int | None,
                          ) -> ResizeOutcome:
    """Shrink to ``target`` servers without instance ``target + 1``, which the operator says
    is lost; Conflict (409) or Unavailable (503) saying what is missing."""
    asked = await asyncio.gather(*(p.step("state", instances=target) for p in servers),
                                 return_exceptions=True)
    said: list[tuple[str, LayoutNode | BaseException]] = []
    for part, answer in zip(servers, asked, strict=True):
        if isinstance(answer, StepAnswer):
            said.append((part.who, LayoutNode(part.who, answer.instance, answer.instances,
                                              answer.fenced, answer.resize_to, answer.retired)))
        else:
            if not isinstance(answer, Exception):
                raise answer
            said.append((part.who, answer))
    lost, done = lost_plan(said, target)
    survivors = [p for p in servers if p.who != lost]
    answers = [a for a in asked if isinstance(a, StepAnswer)]
    outcome = ResizeOutcome(target, target + 1, done, retired=lost)
    if done:
        outcome.servers = [(p.who, a) for p, a in zip(survivors, answers, strict=True)]
        return outcome
    given = margin is not None
    seen = await _each("witnessed", [(p, p.step("witnessed", instances=target, lost=lost))
                                     for p in survivors], outcome.steps)
    if not given and all(answer.witnessed < 0 for answer in seen):
        raise Conflict(f"cannot resize, this request changed nothing: {blind(target + 1)}")
    log.warning("resize %d -> %d servers without the lost instance %d (%s): fencing %d "
                "server(s)", target + 1, target, target + 1, lost, len(survivors))
    fenced_at = time.monotonic()
    try:
        await _each("begin", [(p, p.step("begin", instances=target)) for p in survivors],
                    outcome.steps)
        raised = await _each("lostfloors", [(p, p.step(
            "lostfloors", instances=target, margin=margin or 0, lost=lost, margin_given=given))
            for p in survivors], outcome.steps)
        await _each("commit", [(p, p.step("commit", instances=target)) for p in survivors],
                    outcome.steps)
        ended = await _each("end", [(p, p.step("end", instances=target)) for p in survivors],
                            outcome.steps)
    except SeqgenError as exc:
        raise type(exc)(exc.message + f"; the resize to {target} servers is unfinished (the "
                        "survivors stay fenced): send the same request again to finish "
                        "it") from exc
    outcome.fenced_s = time.monotonic() - fenced_at
    outcome.names = max((answer.names for answer in raised), default=0)
    outcome.largest_jump = max((answer.largest_jump for answer in raised), default=0)
    outcome.margin = max((answer.margin for answer in raised), default=0)
    outcome.servers = [(p.who, answer) for p, answer in zip(survivors, ended, strict=True)]
    log.warning("resized to %d servers without the lost instance %d: %d name(s), largest "
                "jump %d, margin %d, fenced %.3f s", target, target + 1, outcome.names,
                outcome.largest_jump, outcome.margin, outcome.fenced_s)
    return outcome
