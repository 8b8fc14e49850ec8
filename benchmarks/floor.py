"""The floor seqgen is measured against: the least a pyzmq allocator can do.

``python -m benchmarks.floor server ENDPOINT``: a ROUTER loop with a dict, in
memory, no validation, no durability; it echoes the envelope like seqgen does.
``python -m benchmarks.floor device FRONTEND BACKEND...``: libzmq's own
``zmq.proxy`` (ROUTER frontend, DEALER backend) in front of floor servers.
"""

from __future__ import annotations

import sys

import msgspec
import zmq


def serve(endpoint: str) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.bind(endpoint)
    counters: dict[str, int] = {}
    decode = msgspec.json.Decoder().decode
    encode = msgspec.json.Encoder().encode
    while True:
        frames = sock.recv_multipart()
        request = decode(frames[-1])
        name = request[0]
        count = request[2] if len(request) > 2 else 1
        cur = counters.get(name, 0)
        counters[name] = cur + count
        frames[-1] = encode([None, *(str(v) for v in range(cur + 1, cur + count + 1))])
        sock.send_multipart(frames)


def device(frontend: str, backends: list[str]) -> None:
    ctx = zmq.Context()
    front = ctx.socket(zmq.ROUTER)
    front.bind(frontend)
    back = ctx.socket(zmq.DEALER)
    for endpoint in backends:
        back.connect(endpoint)
    zmq.proxy(front, back)


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["server", endpoint]:
            serve(endpoint)
        case ["device", frontend, *backends] if backends:
            device(frontend, backends)
        case _:
            sys.exit("usage: python -m benchmarks.floor server ENDPOINT | device FRONTEND BACKEND...")
