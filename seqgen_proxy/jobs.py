"""Which client requests travel together to a backend: coalescing as pure logic, no zmq.

A *job* is one request to a backend. Without coalescing a job carries one
client request, forwarded as the client sent it (with the ``last`` of seqgen_proxy.caps).
With coalescing, each name has a *lane*, and a name has at most one job out per
backend: a request goes out at once to a healthy backend that has no job of
its name out; when every one has, the request waits in the lane, and when a
job settles the waiting requests leave together, to that backend, as one
request whose ``count`` is the sum of theirs (at most 1,000) and whose ``last``
is the highest of their forwarded ``last`` values. Nothing waits on a timer to
gather a batch, and a frozen backend holds only the job sent to it.

A success reply is split in order (seqgen_common.protocol.split_values): each
client gets its own ``count`` consecutive numbers of the reply, ascending, as
if it had asked alone. An
error reaches every client of the job; a failover resends the whole job.
"""

from __future__ import annotations

from collections import deque

from seqgen_common.limits import MAX_COUNT
from seqgen_common.protocol import encode_request

__all__ = ["Job", "Lane", "Member"]


class Member:
    """One client request: where its reply goes, how many numbers, its forwarded ``last``."""

    __slots__ = ("body", "count", "envelope", "last", "received_at")

    def __init__(self, envelope: list[bytes], body: bytes, count: int, last: int,
                 received_at: float) -> None:
        self.envelope = envelope
        self.body = body
        """The request as forwarded when it travels alone (with the forwarded ``last``)."""
        self.count = count
        self.last = last
        self.received_at = received_at


class Lane:
    """The requests of one name that wait, and the jobs of the name that are out."""

    __slots__ = ("jobs", "name", "queued", "waiting")

    def __init__(self, name: str) -> None:
        self.name = name
        self.waiting: deque[Member] = deque()
        self.jobs: list[Job] = []
        """Jobs of this name waiting on a backend."""
        self.queued = False
        """The lane waits for room in flight (it is in the relay's queue)."""

    def busy_backends(self) -> int:
        """Bit mask of the backends that have a job of this name."""
        mask = 0
        for job in self.jobs:
            mask |= 1 << job.backend
            if job.hedge_backend >= 0:
                mask |= 1 << job.hedge_backend
        return mask

    def take_job(self) -> Job:
        """The next job: waiting requests in arrival order, up to MAX_COUNT numbers in all."""
        waiting = self.waiting
        members = [waiting.popleft()]
        total = members[0].count
        while waiting and total + waiting[0].count <= MAX_COUNT:
            member = waiting.popleft()
            members.append(member)
            total += member.count
        return Job(self, members, total)


class Job:
    """One request to a backend, for one or more client requests of one name."""

    __slots__ = ("backend", "body", "count", "deadline", "fallback", "hedge_at", "hedge_backend",
                 "lane", "members", "out", "sent_at", "settled", "tried")

    def __init__(self, lane: Lane, members: list[Member], count: int) -> None:
        self.lane = lane
        self.members = members
        self.count = count
        if len(members) == 1:
            self.body = members[0].body
        else:
            self.body = encode_request(lane.name, max(m.last for m in members), count)
        self.tried = 0
        """Bit mask of the backends tried so far."""
        self.backend = -1
        """The backend of the current attempt (-1 before the first)."""
        self.sent_at = 0.0
        """When the current attempt was sent."""
        self.deadline = 0.0
        """When the current attempt times out."""
        self.fallback: bytes | None = None
        """An error reply worth retrying elsewhere; the answer if no other backend does better."""
        self.hedge_backend = -1
        """The backend its hedge went to (-1: not hedged; seqgen_proxy.hedges)."""
        self.hedge_at = 0.0
        """When its hedge was sent."""
        self.out = 0
        """Once hedged: its attempts still out."""
        self.settled = False
        """Its clients were answered (an attempt still out is then answered late)."""

    @property
    def name(self) -> str:
        return self.lane.name

    @property
    def received_at(self) -> float:
        """When its oldest client request was read."""
        return self.members[0].received_at
