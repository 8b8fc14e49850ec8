"""Fair shedding at the proxy (issue 22): one name that floods cannot take the whole queue.

A client floods ``["hot", "0", 1000]`` through a proxy with little room in flight and a
small queue, keeping far more requests outstanding than the queue holds, so that the
proxy sheds many of them. Meanwhile another client asks for other names, one request at a
time: every one of its requests is served.
"""

from __future__ import annotations

import threading

import zmq

from tests.conftest import Cluster, ask, wait_until

QUEUED = 200
OUTSTANDING = 2000


class Flood:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.ok = 0
        self.shed = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        sent = answered = 0
        try:
            while not self.stop.is_set():
                while sent - answered < OUTSTANDING:
                    sock.send_multipart([b"", b'["hot","0",1000]'])
                    sent += 1
                if sock.poll(100):
                    reply = sock.recv_multipart()[-1]
                    answered += 1
                    if reply.startswith(b"[null"):
                        self.ok += 1
                    elif b"overloaded" in reply:
                        self.shed += 1
        finally:
            sock.close()


def test_other_names_are_served_while_one_name_floods(cluster: Cluster) -> None:
    server = cluster.server(1, 1)
    proxy = cluster.proxy([server.bind], extra=["--max-in-flight", "4", "--max-queued",
                                                str(QUEUED)])
    flood = Flood(proxy.bind)  # type: ignore[attr-defined]
    try:
        wait_until(lambda: flood.shed > 100 and flood.ok > 0, 30, "the flood overflows its share")
        shed_before = flood.shed
        replies = [ask(proxy.bind, [f"other-{i % 10}", "0"]) for i in range(200)]  # type: ignore[attr-defined]
        assert flood.shed > shed_before  # the flood went on meanwhile, shed
    finally:
        flood.stop.set()
        flood.thread.join(10)
    refused = [reply for reply in replies if reply[0] is not None]
    assert refused == [], f"{len(refused)} of 200 requests for other names shed: {refused[:3]}"
