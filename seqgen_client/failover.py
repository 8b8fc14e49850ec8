"""Which endpoint to try next, and when a call gives up: pure logic, no zmq, no clock.

``Rotation`` spreads calls round-robin over the endpoints and keeps a failed
endpoint out of the rotation for a back-off period (doubling on each new
failure up to a maximum). When its back-off is over, exactly one call probes it
(the probe is claimed, so concurrent calls do not all pay a timeout); a success
puts it back in the rotation.

``Call`` is the plan of one request: it asks the rotation for endpoints, tries
each at most once per pass, judges each reply (``outcome``: the numbers, an
error to raise, or "try elsewhere"), never retries an endpoint that answered
with an error in this call, and gives up when its deadline has passed or every
endpoint refused. The clients (sync and asyncio) only do the I/O; the caller
passes the current time in and holds any lock the rotation needs.

What an attempt brought is a ``Reply``; ``NO_ANSWER`` and ``UNSENT`` say why
there is none. ``PENDING`` is not a reply: the request is out and its reply
still to come (both clients' ``Sent.reply`` before it is received). ``None`` is
never any of these.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Container, Sequence
from typing import Final, Literal

from seqgen_common.errors import RETRY_ELSEWHERE, SeqgenError, Unavailable
from seqgen_common.protocol import decode_reply

__all__ = ["NO_ANSWER", "PENDING", "UNSENT", "Call", "Failure", "NoReply", "PendingReply", "Reply",
           "Rotation", "judge"]


class NoReply(enum.Enum):
    """Why an attempt brought no reply."""

    NO_ANSWER = "no answer"
    """No reply within its timeout."""
    UNSENT = "unsent"
    """The request could not even be queued (the endpoint's send queue is full)."""


class _Pending(enum.Enum):
    PENDING = "pending"


NO_ANSWER: Final = NoReply.NO_ANSWER
"""An attempt got no reply within its timeout."""
UNSENT: Final = NoReply.UNSENT
"""An attempt could not even queue its request (the endpoint's send queue is full)."""
PENDING: Final = _Pending.PENDING
"""Not a reply: the attempt's request is out and its reply still to come."""
PendingReply = Literal[_Pending.PENDING]

Failure = SeqgenError | NoReply
"""Why an attempt failed: no answer, unsent, or an error (a reply in RETRY_ELSEWHERE, or an
AuthError: the endpoint refused the security handshake)."""
Reply = bytes | NoReply | SeqgenError
"""What an attempt brought back: the reply, or why there is none (``NoReply``; an AuthError:
the endpoint refused the security handshake)."""


def judge(rotation: Rotation, index: int, started: float, reply: Reply, count: int,
          ) -> list[int] | Failure:
    """What the reply of an attempt on ``index`` (started at ``started``) means.

    The ``count`` numbers of a success reply (the endpoint is up); a ``Failure``
    to try elsewhere (no answer, not sent, a refused handshake, INTERNAL or
    UNAVAILABLE); any other error reply is raised, since every endpoint would
    answer it alike (it answered: it is up). ``Call.outcome`` and the first
    attempt of ``ClientBase._plan`` (which makes no ``Call`` when it succeeds).
    """
    if isinstance(reply, bytes):
        try:
            values = decode_reply(reply, count)
        except SeqgenError as exc:
            if exc.code not in RETRY_ELSEWHERE:
                rotation.succeeded(index, started)
                raise
            return exc
        rotation.succeeded(index, started)
        return values
    return reply


_HEALTHY = -math.inf
_MAX_DOUBLINGS = 32


class Rotation:
    """Round-robin over ``size`` endpoints with per-endpoint back-off.

    Not thread-safe by itself: the sync client calls it under its lock.
    """

    __slots__ = ("_backoff_s", "_cursor", "_failed_at", "_failures", "_max_backoff_s",
                 "_retry_at", "_size", "_suspects")

    def __init__(self, size: int, backoff_s: float, max_backoff_s: float, start: int = 0) -> None:
        if size < 1:
            raise ValueError("at least one endpoint is needed")
        self._size = size
        self._backoff_s = backoff_s
        self._max_backoff_s = max(backoff_s, max_backoff_s)
        self._cursor = start % size
        self._failures = [0] * size
        """Consecutive failures (0: healthy)."""
        self._retry_at = [_HEALTHY] * size
        """When the endpoint may be tried again (its back-off ends, or a claimed probe expires)."""
        self._failed_at = [_HEALTHY] * size
        """When the endpoint was last marked failed."""
        self._suspects = 0

    @property
    def size(self) -> int:
        return self._size

    def delay_s(self, failures: int) -> float:
        """The back-off after ``failures`` consecutive failures."""
        doublings = min(max(failures - 1, 0), _MAX_DOUBLINGS)
        return float(min(self._backoff_s * (1 << doublings), self._max_backoff_s))

    def pick(self, now: float, skip: Container[int] = ()) -> int | None:
        """The endpoint for the next attempt, or None when every one is in ``skip``.

        Healthy endpoints and those whose back-off is over come first, in
        round-robin order; an endpoint whose back-off is over is claimed for
        this probe until another back-off period has passed. When only endpoints
        in back-off remain, the one due soonest is returned (better a probe than
        giving up) without touching its back-off.
        """
        size = self._size
        if not self._suspects and not skip:
            index = self._cursor
            self._cursor = index + 1 if index + 1 < size else 0
            return index
        retry_at = self._retry_at
        soonest: int | None = None
        for step in range(size):
            index = (self._cursor + step) % size
            if index in skip:
                continue
            if retry_at[index] <= now:
                if self._failures[index]:
                    retry_at[index] = now + self.delay_s(self._failures[index])
                self._cursor = (index + 1) % size
                return index
            if soonest is None or retry_at[index] < retry_at[soonest]:
                soonest = index
        return soonest

    def pick_hedge(self, other_than: int) -> int | None:
        """The endpoint for a hedge of an attempt on ``other_than``, or None.

        The next healthy one in round-robin order; when no other endpoint is healthy, the
        other one due soonest, its back-off untouched. An attempt is hedged because it has
        not been answered: its endpoint may be down while the one in back-off is back (a
        client whose own link was cut off keeps one endpoint in back-off for up to
        ``max_backoff_s`` after the link heals, and then loses the other). A hedge to an
        endpoint in back-off is a probe within the budget; one that is answered puts it back.
        """
        size, failures = self._size, self._failures
        for step in range(size):
            index = (self._cursor + step) % size
            if index != other_than and not failures[index]:
                self._cursor = (index + 1) % size
                return index
        others = [index for index in range(size) if index != other_than]
        return min(others, key=self._retry_at.__getitem__, default=None)

    def failed(self, index: int, started: float, now: float) -> None:
        """An attempt started at ``started`` got no usable answer by ``now``.

        Attempts that started before the endpoint was last marked failed belong
        to the same outage and do not lengthen its back-off again.
        """
        if started < self._failed_at[index]:
            return
        if not self._failures[index]:
            self._suspects += 1
        self._failures[index] += 1
        self._failed_at[index] = now
        self._retry_at[index] = now + self.delay_s(self._failures[index])

    def suspect(self, index: int, started: float, now: float) -> None:
        """The attempt on ``index`` started at ``started`` lost to a hedge by ``now``: the
        endpoint is skipped for ``backoff_s``, not doubled per loss (finding out cost a hedge
        delay, not a timeout, so probing it every back-off period stays cheap; a healed
        endpoint is used again within about ``backoff_s``). Its attempt's timeout, if no
        answer comes, belongs to the same outage."""
        if started < self._failed_at[index]:
            return
        if not self._failures[index]:
            self._suspects += 1
            self._failures[index] = 1
        self._failed_at[index] = now
        self._retry_at[index] = now + self._backoff_s

    def succeeded(self, index: int, started: float) -> None:
        """An attempt started at ``started`` got an answer."""
        if self._failures[index] and started >= self._failed_at[index]:
            self._failures[index] = 0
            self._retry_at[index] = _HEALTHY
            self._suspects -= 1


class Call:
    """One request's attempts: which endpoint next, with what timeout, and the final error.

    An endpoint is tried at most once per pass. One that did not answer in
    time may be tried again in a later pass (a timeout costs time, so passes
    cannot spin); one that answered with an error is not asked again in this
    call.
    """

    __slots__ = ("_deadline_s", "_endpoints", "_error", "_refused", "_rotation", "_timeout_s",
                 "_tried", "deadline")

    def __init__(self, rotation: Rotation, endpoints: Sequence[str], started: float,
                 deadline_s: float, timeout_s: float) -> None:
        self._rotation = rotation
        self._endpoints = endpoints
        self._timeout_s = timeout_s
        self._deadline_s = deadline_s
        self.deadline = started + deadline_s
        self._tried: set[int] = set()
        self._refused: set[int] = set()
        self._error: SeqgenError | None = None

    def next(self, now: float) -> tuple[int, float] | None:
        """(endpoint index, timeout) of the next attempt, or None to give up."""
        remaining = self.deadline - now
        if remaining <= 0:
            return None
        index = self._rotation.pick(now, self._tried)
        if index is None:
            if len(self._refused) >= self._rotation.size:
                return None
            self._tried = set(self._refused)  # a new pass over the silent ones
            index = self._rotation.pick(now, self._tried)
            if index is None:  # pragma: no cover - a pass always has a candidate here
                return None
        self._tried.add(index)
        return index, min(self._timeout_s, remaining)

    def outcome(self, index: int, started: float, now: float, reply: Reply, count: int,
                ) -> list[int] | None:
        """Judge what the attempt on ``index`` (started at ``started``) brought back by ``now``
        (``judge``): the ``count`` numbers of a success reply; None to try elsewhere (the
        failure is recorded); any other error reply is raised."""
        judged = judge(self._rotation, index, started, reply, count)
        if isinstance(judged, list):
            return judged
        self.missed(index, started, now, judged)
        return None

    def missed(self, index: int, started: float, now: float, failure: Failure) -> None:
        """The attempt on ``index`` (started at ``started``) failed by ``now``, also one this
        plan did not make (the first): not again in this pass."""
        self._tried.add(index)
        self.failed(index, started, now, failure)

    def failed(self, index: int, started: float, now: float, failure: Failure) -> None:
        """The attempt on ``index`` that started at ``started`` failed by ``now``."""
        if failure is NO_ANSWER:
            # An attempt cut short by the deadline says little about the endpoint.
            if self.deadline - started < self._timeout_s:
                return
        else:
            # It answered with an error, or cannot take requests: not again in this call.
            self._refused.add(index)
            if isinstance(failure, SeqgenError):
                self._error = failure
        self._rotation.failed(index, started, now)

    def error(self) -> SeqgenError:
        """What to raise when the call gives up: the last error reply, else Unavailable."""
        if self._error is not None:
            return self._error
        tried = ", ".join(self._endpoints)
        return Unavailable(f"no answer from {tried} within {self._deadline_s:g} s")
