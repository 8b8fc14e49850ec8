"""CURVE on real servers, proxies and clients: who gets numbers and who gets nothing.

Keys are made with ``seqgen keygen`` (the command under test) into a temporary
directory. A client that is refused sees no error reply, only silence: the
handshake fails and ZeroMQ never delivers its request. So every "gets nothing"
below is paired with an allowed client getting numbers from the same process
at the same time, which proves the silence is the refusal and not a slow or
dead server.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest
import zmq
import zmq.auth

from seqgen_client import AsyncClient, Client
from seqgen_common.curve import KeyPair
from seqgen_common.errors import AUTH, AuthError
from tests.conftest import READY_TIMEOUT_S, Cluster, Proc, ServerProc, request, tcp, wait_until

SILENT_TIMEOUT_S = 0.3
SILENT_DEADLINE_S = 0.8
"""For calls that must get nothing: failing fast keeps the tests short."""


def silent_client(endpoint: str, server_public_key: Path | bytes | None = None,
                  client_secret_key: Path | None = None) -> Client:
    """A client for calls that must get nothing."""
    return Client(endpoint, server_public_key=server_public_key,
                  client_secret_key=client_secret_key, timeout_s=SILENT_TIMEOUT_S,
                  deadline_s=SILENT_DEADLINE_S)


def seqgen(*args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "SEQGEN_ENDPOINTS"}
    return subprocess.run([sys.executable, "-m", "seqgen_client", *args], capture_output=True,
                          text=True, env=environ, timeout=60, check=False)


def keygen(directory: Path, name: str) -> tuple[Path, Path]:
    """(NAME.key, NAME.key_secret) written by ``seqgen keygen``."""
    done = seqgen("keygen", str(directory), "--name", name)
    assert done.returncode == 0, done.stderr
    public, secret = (Path(line) for line in done.stdout.splitlines())
    return public, secret


def allow(directory: Path, *public_keys: Path) -> Path:
    """A --curve-clients directory holding copies of ``public_keys``."""
    directory.mkdir(exist_ok=True)
    for key in public_keys:
        (directory / key.name).write_bytes(key.read_bytes())
    return directory


def curve_request(endpoint: str, server_key: Path | None, client_secret: Path | None,
                  body: bytes, timeout_s: float) -> bytes | None:
    """One raw REQ round trip, with CURVE when keys are given; None when nothing came."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        if server_key is not None:
            sock.curve_serverkey = zmq.auth.load_certificate(server_key)[0]
            if client_secret is None:
                public, secret = zmq.curve_keypair()
            else:
                public, secret_or_none = zmq.auth.load_certificate(client_secret)
                assert secret_or_none is not None
                secret = secret_or_none
            sock.curve_publickey = public
            sock.curve_secretkey = secret
        sock.connect(endpoint)
        sock.send(body)
        return sock.recv() if sock.poll(int(timeout_s * 1000)) else None
    finally:
        sock.close()


def curve_server(cluster: Cluster, instance: int, instances: int, secret: Path,
                 clients: Path | None = None) -> ServerProc:
    extra = ["--curve-secret-key", str(secret)]
    if clients is not None:
        extra += ["--curve-clients", str(clients)]
    # Ready when its control socket (never CURVE) answers a plain ping.
    return cluster.server(instance, instances, extra=extra)


def curve_proxy(cluster: Cluster, hosts: Sequence[str], extra: Sequence[str], server_key: Path,
                client_secret: Path | None) -> Proc:
    """A proxy whose frontend is CURVE: ready when it answers ``[]`` to a CURVE client."""
    proxy = cluster.proxy(hosts, extra=extra, wait=False)
    bind: str = proxy.bind  # type: ignore[attr-defined]
    wait_until(lambda: curve_request(bind, server_key, client_secret, b"[]", 0.5) is not None,
               READY_TIMEOUT_S, "seqgen-proxy (CURVE)", proxy)
    return proxy


# ---- keygen --------------------------------------------------------------------------------


def test_keygen_writes_a_usable_pair_and_never_overwrites(short_tmp: Path) -> None:
    folder = short_tmp / "new" / "keys"  # created, with its parent
    public, secret = keygen(folder, "server-1")
    assert (public, secret) == (folder / "server-1.key", folder / "server-1.key_secret")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    public_key, none = zmq.auth.load_certificate(public)
    assert none is None  # the public file holds no secret
    pair_public, pair_secret = zmq.auth.load_certificate(secret)
    assert pair_secret is not None
    assert pair_public == public_key == zmq.curve_public(pair_secret)
    assert sorted(p.name for p in folder.iterdir()) == ["server-1.key", "server-1.key_secret"]

    before = secret.read_bytes()
    again = seqgen("keygen", str(folder), "--name", "server-1")
    assert again.returncode == 1
    assert "exists already" in again.stderr
    assert secret.read_bytes() == before
    bad_name = seqgen("keygen", str(folder), "--name", "../escape")
    assert bad_name.returncode == 2
    assert "key name" in bad_name.stderr
    default = seqgen("keygen", str(folder))
    assert default.returncode == 0, default.stderr
    assert default.stdout.split() == [str(folder / "seqgen.key"), str(folder / "seqgen.key_secret")]


# ---- the server ----------------------------------------------------------------------------


def test_only_allowed_clients_get_numbers_from_a_curve_server(cluster: Cluster) -> None:
    keys = cluster.root / "keys"
    server_public, server_secret = keygen(keys, "server")
    app_public, app_secret = keygen(keys, "app")
    _, stranger_secret = keygen(keys, "stranger")
    server = curve_server(cluster, 1, 1, server_secret, allow(cluster.root / "allowed", app_public))

    with Client(server.bind, server_public_key=server_public, client_secret_key=app_secret) as ok:
        assert ok.next("inv") == 1
        # A plain client: no reply at all (the handshake fails), not even an error.
        assert request(server.bind, b'["inv", "0"]', timeout_s=1.0) is None
        # A CURVE client whose key is not in --curve-clients: no reply, and the client says
        # why (the socket monitor saw the refusal) after one attempt, not the deadline.
        with silent_client(server.bind, server_public, stranger_secret) as stranger, \
                pytest.raises(AuthError, match="refused this client's CURVE public key"):
            stranger.next("inv")
        # An ephemeral key is a stranger too.
        with silent_client(server.bind, server_public) as anonymous, \
                pytest.raises(AuthError, match="not in the server's --curve-clients"):
            anonymous.next("inv")
        # Meanwhile the allowed client is served, and nothing was issued to the others.
        assert ok.next_many("inv", 3) == [2, 3, 4]

    async def main() -> list[int]:
        async with AsyncClient([server.bind], server_public_key=server_public,
                               client_secret_key=app_secret) as client:
            return list(await asyncio.gather(*(client.next("async") for _ in range(5))))

    assert sorted(asyncio.run(main())) == [1, 2, 3, 4, 5]
    assert server.ping()  # the control socket stays plain
    assert "refused a CURVE client with an unknown public key" in server.log()


def test_a_client_that_trusts_another_server_key_gets_nothing(cluster: Cluster) -> None:
    keys = cluster.root / "keys"
    server_public, server_secret = keygen(keys, "server")
    impostor_public, _ = keygen(keys, "impostor")
    server = curve_server(cluster, 1, 1, server_secret)
    with silent_client(server.bind, impostor_public) as fooled, \
            pytest.raises(AuthError, match="CURVE settings do not match"):
        fooled.next("x")
    with Client(server.bind, server_public_key=server_public) as right:
        assert right.next("x") == 1


def test_without_a_client_list_any_curve_client_is_served_but_no_plain_one(
    cluster: Cluster,
) -> None:
    keys = cluster.root / "keys"
    server_public, server_secret = keygen(keys, "server")
    server = curve_server(cluster, 1, 1, server_secret)
    # Key material as z85 text works as well as the certificate file.
    z85_server_key = zmq.auth.load_certificate(server_public)[0]
    with Client(server.bind, server_public_key=z85_server_key) as anyone:  # ephemeral pair
        assert anyone.next("open") == 1
        assert request(server.bind, b'["open", "0"]', timeout_s=1.0) is None
        assert anyone.next("open") == 2
    assert "ANY client key accepted" in server.log()
    # The start-up line shared with the proxy (seqgen_common.curve.start_gatekeeper).
    assert re.search(r"public socket: CURVE on .*\(no --curve-clients\)", server.log())


def test_a_plain_server_is_unchanged_and_refuses_curve_clients(cluster: Cluster) -> None:
    keys = cluster.root / "keys"
    server_public, _ = keygen(keys, "server")
    server = cluster.server()
    assert request(server.bind, b'["plain", "0"]') == [b'[null,"1"]']
    assert curve_request(server.bind, server_public, None, b'["plain", "0"]', 1.0) is None
    with Client(server.bind) as plain:
        assert plain.next("plain") == 2


# ---- the proxy -----------------------------------------------------------------------------


def test_a_proxy_relays_between_curve_clients_and_curve_servers(cluster: Cluster) -> None:
    keys = cluster.root / "keys"
    server_public, server_secret = keygen(keys, "servers")  # one pair for the servers
    proxy_public, proxy_secret = keygen(keys, "proxy")  # the proxy as the servers' client
    front_public, front_secret = keygen(keys, "front")  # the proxy as the clients' server
    app_public, app_secret = keygen(keys, "app")
    servers_allow = allow(cluster.root / "servers-allow", proxy_public)
    odd = curve_server(cluster, 1, 2, server_secret, servers_allow)
    even = curve_server(cluster, 2, 2, server_secret, servers_allow)
    proxy = curve_proxy(
        cluster, [odd.bind, even.bind],
        ["--timeout", "0.5", "--probe-interval", "0.1",
         "--curve-secret-key", str(front_secret),
         "--curve-clients", str(allow(cluster.root / "front-allow", app_public)),
         "--host-public-key", str(server_public), "--curve-client-key", str(proxy_secret)],
        front_public, app_secret,
    )
    bind: str = proxy.bind  # type: ignore[attr-defined]
    with Client(bind, server_public_key=front_public, client_secret_key=app_secret) as app:
        values = [app.next("relayed") for _ in range(10)]
        assert len(set(values)) == 10
        assert {v % 2 for v in values} == {0, 1}  # both servers answered through the proxy
        # Plain and unknown clients get nothing from the proxy...
        assert request(bind, b'["relayed", "0"]', timeout_s=1.0) is None
        with silent_client(bind, front_public) as stranger, \
                pytest.raises(AuthError, match="ZAP status 400"):
            stranger.next("relayed")
        # ...and the app's key does not open the servers themselves.
        with silent_client(odd.bind, server_public, app_secret) as direct, \
                pytest.raises(AuthError, match="ZAP status 400"):
            direct.next("relayed")

        # A frozen server: the proxy times out, closes and reopens its socket and
        # probes it; the reopened socket must carry the keys to be let in again.
        odd.stop()
        try:
            during = [app.next("relayed") for _ in range(6)]
            assert all(v % 2 == 0 for v in during), during
        finally:
            odd.cont()
        wait_until(lambda: app.next("relayed") % 2 == 1, 15.0, "the thawed server back", proxy)
    assert proxy.alive()
    assert re.search(r"frontend: CURVE on .*, 1 allowed client key\(s\) from ", proxy.log())
    assert re.search(r"public socket: CURVE on .*, 1 allowed client key\(s\) from ", odd.log())


def test_a_proxy_without_an_allowed_key_gets_unavailable_from_curve_servers(
    cluster: Cluster,
) -> None:
    keys = cluster.root / "keys"
    server_public, server_secret = keygen(keys, "servers")
    proxy_public, _ = keygen(keys, "proxy")
    server = curve_server(cluster, 1, 1, server_secret, allow(cluster.root / "a", proxy_public))
    # --curve-client-key left out: the proxy uses an ephemeral pair, which the server refuses.
    proxy = cluster.proxy([server.bind], extra=["--timeout", "0.3",
                                                "--host-public-key", str(server_public)])
    reply = request(proxy.bind, b'["x", "0"]', timeout_s=10.0)  # type: ignore[attr-defined]
    assert reply is not None
    assert msgspec.json.decode(reply[0])[0] == "UNAVAILABLE"
    assert "ephemeral" in proxy.log()
    # The proxy says which backend refused it, and why (issue 21).
    wait_until(lambda: f"backend {server.bind} refused the proxy's security handshake" in proxy.log(),
               10, "the proxy's log of the refusal", proxy)
    assert "ZAP status 400" in proxy.log()


# ---- refusals at start ---------------------------------------------------------------------


def _start(package: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", package, *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_missing_or_wrong_key_files_stop_the_daemons_with_a_clear_message(short_tmp: Path) -> None:
    public, secret = keygen(short_tmp / "keys", "k")
    missing = short_tmp / "nope.key_secret"
    data = ["--data", str(short_tmp / "data"), "--bind", tcp(), "--control", tcp()]
    cases: list[tuple[str, list[str], str]] = [
        ("seqgen_server", [*data, "--curve-secret-key", str(missing)], "no such certificate file"),
        ("seqgen_server", [*data, "--curve-secret-key", str(public)], "holds no secret key"),
        ("seqgen_server", [*data, "--curve-secret-key", str(secret), "--curve-clients",
                           str(short_tmp / "none")], "no such directory"),
        ("seqgen_server", [*data, "--curve-clients", str(short_tmp)], "needs --curve-secret-key"),
        ("seqgen_proxy", ["--host", tcp(), "--curve-secret-key", str(missing)],
         "no such certificate file"),
        ("seqgen_proxy", ["--host", tcp(), "--host-public-key", str(missing)],
         "no such certificate file"),
        ("seqgen_proxy", ["--host", tcp(), "--host-public-key", str(public),
                          "--curve-client-key", str(public)], "holds no secret key"),
    ]
    for package, args, message in cases:
        done = _start(package, *args)
        assert done.returncode == 2, (package, args, done.stderr)
        assert message in done.stderr, (package, args, done.stderr)
        assert str(missing) in done.stderr or message != "no such certificate file"
    assert not (short_tmp / "data").exists()  # refused before touching the data directory


# ---- the command line ----------------------------------------------------------------------


def test_seqgen_next_with_keys_end_to_end(cluster: Cluster) -> None:
    keys = cluster.root / "keys"
    server_public, server_secret = keygen(keys, "server")
    cli_public, cli_secret = keygen(keys, "cli")
    _, other_secret = keygen(keys, "other")
    server = curve_server(cluster, 1, 1, server_secret, allow(cluster.root / "allowed", cli_public))

    done = seqgen("next", "cli", "-n", "3", "-e", server.bind,
                  "--server-key", str(server_public), "--client-key", str(cli_secret))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "2", "3"]
    for refused in ([], ["--server-key", str(server_public), "--client-key", str(other_secret)]):
        silent = seqgen("next", "cli", "-e", server.bind, "--timeout", "0.3", "--deadline", "0.8",
                        *refused)
        assert silent.returncode == 5, silent.stderr  # AUTH: refused, told why
        assert "seqgen: AUTH: " in silent.stderr
    usage = seqgen("next", "cli", "-e", server.bind, "--client-key", str(cli_secret))
    assert usage.returncode == 2
    assert "--client-key needs --server-key" in usage.stderr
    unreadable = seqgen("next", "cli", "-e", server.bind, "--server-key", str(keys / "gone.key"))
    assert unreadable.returncode == 2
    assert "no such certificate file" in unreadable.stderr
    again = seqgen("next", "cli", "-e", server.bind,
                   "--server-key", str(server_public), "--client-key", str(cli_secret))
    assert again.stdout.split() == ["4"]


def test_key_pairs_from_z85_text_work_like_files(cluster: Cluster) -> None:
    keys = cluster.root / "keys"
    server_public, server_secret = keygen(keys, "server")
    pair = KeyPair.generate()
    allowed = cluster.root / "allowed"
    allowed.mkdir()
    (allowed / "z.key").write_text(f'curve\n    public-key = "{pair.public.decode()}"\n')
    server = curve_server(cluster, 1, 1, server_secret, allowed)
    server_key = zmq.auth.load_certificate(server_public)[0].decode()
    with Client(server.bind, server_public_key=server_key,
                client_secret_key=pair.secret.decode()) as client:
        assert client.next("z85") == 1


# ---- refusals reported as such (issue 21) ---------------------------------------------------


def test_a_refused_handshake_is_an_auth_error_within_one_attempt(cluster: Cluster) -> None:
    keys = cluster.root / "keys"
    server_public, server_secret = keygen(keys, "server")
    app_public, app_secret = keygen(keys, "app")
    _, stranger_secret = keygen(keys, "stranger")
    server = curve_server(cluster, 1, 1, server_secret, allow(cluster.root / "allowed", app_public))
    plain = cluster.server()
    timeout_s, deadline_s = 0.5, 20.0
    cases = {
        "unknown key": ({"endpoints": server.bind, "server_public_key": server_public,
                         "client_secret_key": stranger_secret}, "ZAP status 400"),
        "plain client": ({"endpoints": server.bind}, "do not match"),
        "CURVE client, plain server": ({"endpoints": plain.bind, "server_public_key": server_public,
                                        "client_secret_key": app_secret}, "do not match"),
    }
    for label, (options, reason) in cases.items():
        started = time.monotonic()
        with Client(**options, timeout_s=timeout_s, deadline_s=deadline_s) as client, \
                pytest.raises(AuthError) as raised:
            client.next("refused")
        elapsed = time.monotonic() - started
        assert raised.value.code == AUTH == "AUTH", label
        assert reason in raised.value.message and raised.value.message.startswith("tcp://"), label
        assert elapsed < 2 * timeout_s + 1.0 < deadline_s, (label, elapsed)  # not the deadline

    async def refused_async() -> AuthError:
        async with AsyncClient([server.bind], server_public_key=server_public,
                               client_secret_key=stranger_secret, timeout_s=timeout_s,
                               deadline_s=deadline_s) as client:
            with pytest.raises(AuthError) as raised:
                await client.next("refused")
            return raised.value

    started = time.monotonic()
    assert "ZAP status 400" in asyncio.run(refused_async()).message
    assert time.monotonic() - started < deadline_s / 2
    # Another endpoint that accepts the client still serves it: a refusal only skips that one.
    with Client([plain.bind, server.bind], timeout_s=timeout_s, deadline_s=deadline_s) as mixed:
        assert all(mixed.next("mixed") > 0 for _ in range(4))
    assert server.ping()  # the server is fine
