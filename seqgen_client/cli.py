"""``seqgen``: the command line for people. Command line -> typed command -> run.

    seqgen next NAME [-n N | --count N] [--last N] [-e URI | --endpoint URI ...]
                     [--timeout S] [--deadline S] [--server-key FILE [--client-key FILE]]
    seqgen keygen DIR [--name NAME]

``next`` prints the numbers one per line; ``--last N`` sends N as ``last`` (a
script that keeps its own highest number makes a server that fell behind skip
past it). The endpoints come from ``-e``
(repeatable), else from ``SEQGEN_ENDPOINTS`` (comma-separated), else the local
cluster's proxy. The environment is read in ``main()``, never at import time.
``keygen`` writes a CURVE key pair (NAME.key, NAME.key_secret) and prints the
two paths.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TextIO

from seqgen_client.client import Client
from seqgen_client.keygen import check_key_name, write_key_pair
from seqgen_client.options import DEFAULT_DEADLINE_S, DEFAULT_ENDPOINT, DEFAULT_TIMEOUT_S
from seqgen_common import __version__
from seqgen_common.curve import client_keys
from seqgen_common.endpoints import validate_zmq
from seqgen_common.errors import AuthError, RequestError, SeqgenError, Unavailable
from seqgen_common.limits import MAX_COUNT
from seqgen_common.protocol import validate_count, validate_last, validate_name

__all__ = [
    "EXIT_AUTH",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "KeygenCommand",
    "NextCommand",
    "endpoints_from",
    "main",
    "parse_args",
    "run_keygen",
    "run_next",
]

EXIT_OK: Final = 0
"""The numbers (or the key files) were printed."""
EXIT_FAILED: Final = 1
"""keygen could not write the key files (they exist already, or the directory is not writable)."""
EXIT_USAGE: Final = 2
"""The command line is wrong, whether a value does not parse (``--count abc``) or is out of
its range (``--count 0``, a name the protocol refuses): argparse's own status, with the
usage line of the (sub)command. Nothing was sent."""
EXIT_REFUSED: Final = 3
"""An endpoint refused the request: EXHAUSTED, INTERNAL or any other error reply;
CODE: message on stderr."""
EXIT_UNAVAILABLE: Final = 4
"""No endpoint answered within the deadline."""
EXIT_AUTH: Final = 5
"""The endpoints refused the CURVE handshake (AUTH: wrong or missing keys); nothing was issued."""

ENDPOINTS_ENV: Final = "SEQGEN_ENDPOINTS"
DEFAULT_KEY_NAME: Final = "seqgen"

_EPILOG = f"""\
endpoints: -e URI (repeatable), else ${ENDPOINTS_ENV} (comma-separated),
else {DEFAULT_ENDPOINT} (the local cluster's proxy).

CURVE: --server-key FILE is the server's (or proxy's) public key (its NAME.key);
--client-key FILE this client's key pair (its NAME.key_secret, made with
`seqgen keygen`). Without --client-key a throw-away pair is used, which only
servers accepting any client key take.

exit status:
  {EXIT_OK}  success
  {EXIT_FAILED}  keygen could not write the key files
  {EXIT_USAGE}  usage error, nothing sent: a bad option or value (a count out of 1..{MAX_COUNT},
     a name the protocol refuses, a bad endpoint URI, an unreadable key file)
  {EXIT_REFUSED}  the request was refused: EXHAUSTED, INTERNAL, ...
     ("seqgen: CODE: message" on stderr)
  {EXIT_UNAVAILABLE}  unavailable: no endpoint answered within the deadline
  {EXIT_AUTH}  AUTH: the endpoints refused the CURVE handshake (check --server-key and
     --client-key, and the server's --curve-clients)
"""


@dataclass(frozen=True, slots=True)
class NextCommand:
    """``seqgen next``: what to ask for and where."""

    name: str
    count: int
    endpoints: tuple[str, ...]
    last: int = 0
    """Sent as ``last``: the highest number of NAME the caller has seen (0: none)."""
    timeout_s: float = DEFAULT_TIMEOUT_S
    deadline_s: float = DEFAULT_DEADLINE_S
    server_key: bytes | None = None
    """The server's z85 public key (CURVE on); None: plain."""
    client_secret_key: bytes | None = field(default=None, repr=False)
    """This client's z85 secret key; None: an ephemeral pair (when CURVE is on)."""


@dataclass(frozen=True, slots=True)
class KeygenCommand:
    """``seqgen keygen``: where to write which key pair."""

    directory: Path
    name: str = DEFAULT_KEY_NAME


Command = NextCommand | KeygenCommand


def endpoints_from(given: Sequence[str] | None, environ: Mapping[str, str]) -> tuple[str, ...]:
    """``-e`` URIs if any, else ``SEQGEN_ENDPOINTS``, else the default endpoint."""
    if given:
        return tuple(given)
    listed = tuple(uri.strip() for uri in environ.get(ENDPOINTS_ENV, "").split(","))
    listed = tuple(uri for uri in listed if uri)
    return listed or (DEFAULT_ENDPOINT,)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _last(text: str) -> int:
    try:
        return validate_last(text)
    except SeqgenError as exc:
        raise argparse.ArgumentTypeError(f"{exc.message}: {text!r}") from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    try:
        return validate_count(value)
    except RequestError as exc:
        raise argparse.ArgumentTypeError(f"{exc.message}, got {value}") from None


def _name(text: str) -> str:
    try:
        return validate_name(text)
    except RequestError as exc:
        raise argparse.ArgumentTypeError(f"{exc.message}: {text!r}") from None


def _key_name(text: str) -> str:
    try:
        return check_key_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _endpoint(text: str) -> str:
    try:
        return validate_zmq(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqgen",
        description="Get numbers from a seqgen cluster (servers or proxies).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    next_ = commands.add_parser(
        "next",
        help="print the next number(s) of a sequence, one per line",
        description="Print the next number(s) of sequence NAME, one per line, ascending.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    next_.add_argument("name", metavar="NAME", type=_name,
                       help="the sequence name (1 to 200 UTF-8 bytes, no control characters)")
    next_.add_argument("-n", "--count", type=_count, default=1, metavar="N",
                       help="how many numbers, 1..1000, in one round trip (default %(default)s)")
    next_.add_argument("--last", type=_last, default=0, metavar="N",
                       help="the highest number of NAME this caller has seen, sent as `last`: "
                       "a server more than its drift behind skips past it (digits, "
                       "0..9223372036854775807; default %(default)s, nothing seen)")
    next_.add_argument("-e", "--endpoint", dest="endpoints", action="append", type=_endpoint,
                       metavar="URI", help="a server or proxy, e.g. tcp://10.0.0.11:6410 "
                       "(repeatable; tried round-robin with failover)")
    next_.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT_S, metavar="S",
                       help="seconds to wait for one endpoint before trying the next "
                       "(default %(default)s)")
    next_.add_argument("--deadline", type=_seconds, default=DEFAULT_DEADLINE_S, metavar="S",
                       help="seconds the whole command may wait, failovers included "
                       "(default %(default)s)")
    next_.add_argument("--server-key", type=Path, metavar="FILE",
                       help="turn on CURVE: the servers' (or proxies') public key certificate, "
                       "NAME.key")
    next_.add_argument("--client-key", type=Path, metavar="FILE",
                       help="with --server-key: this client's key pair, NAME.key_secret "
                       "(default: a throw-away pair)")
    keygen = commands.add_parser(
        "keygen",
        help="write a CURVE key pair (NAME.key, NAME.key_secret) into DIR",
        description="Write a new CURVE key pair into DIR (created if missing): NAME.key, the "
        "public key to hand out, and NAME.key_secret (mode 0600), the pair to keep. Existing "
        "files are never overwritten. Prints the two paths, public first.",
    )
    keygen.add_argument("directory", metavar="DIR", type=Path, help="where to write the files")
    keygen.add_argument("--name", default=DEFAULT_KEY_NAME, type=_key_name,
                        metavar="NAME", help="file name stem (default %(default)s)")
    return parser


def _subcommand(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The parser of one subcommand, whose ``error`` prints that subcommand's usage."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]  # type: ignore[no-any-return]
    raise LookupError(command)


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> Command:
    """The command for ``argv``; SystemExit(EXIT_USAGE) with a message when it is wrong."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "keygen":
        return KeygenCommand(directory=args.directory, name=args.name)
    usage = _subcommand(parser, args.command)  # errors below show `usage: seqgen next ...`
    endpoints = endpoints_from(args.endpoints, environ)
    for uri in endpoints:
        try:
            validate_zmq(uri)
        except ValueError as exc:
            usage.error(f"{ENDPOINTS_ENV}: {exc}")
    if args.client_key is not None and args.server_key is None:
        usage.error("--client-key needs --server-key")
    try:
        curve = client_keys(args.server_key, args.client_key)
    except ValueError as exc:
        usage.error(str(exc))
    return NextCommand(
        name=args.name,
        count=args.count,
        endpoints=endpoints,
        last=args.last,
        timeout_s=args.timeout,
        deadline_s=args.deadline,
        server_key=None if curve is None else curve.server_key,
        client_secret_key=None if curve is None or curve.ephemeral else curve.keys.secret,
    )


def run_next(command: NextCommand, out: TextIO, err: TextIO) -> int:
    """Ask for the numbers and print them; the exit status."""
    with Client(command.endpoints, timeout_s=command.timeout_s,
                deadline_s=command.deadline_s, server_public_key=command.server_key,
                client_secret_key=command.client_secret_key) as client:
        try:
            if command.last:
                client.seen(command.name, command.last)
            values = client.next_many(command.name, command.count)
        except Unavailable as exc:
            err.write(f"seqgen: {exc}\n")
            return EXIT_UNAVAILABLE
        except AuthError as exc:
            err.write(f"seqgen: {exc}\n")
            return EXIT_AUTH
        except SeqgenError as exc:
            err.write(f"seqgen: {exc}\n")
            return EXIT_REFUSED
    out.write("".join(f"{value}\n" for value in values))
    out.flush()
    return EXIT_OK


def run_keygen(command: KeygenCommand, out: TextIO, err: TextIO) -> int:
    """Write the key pair and print its two paths; the exit status."""
    try:
        files = write_key_pair(command.directory, command.name)
    except ValueError as exc:
        err.write(f"seqgen: {exc}\n")
        return EXIT_USAGE
    except OSError as exc:
        err.write(f"seqgen: cannot write the keys: {exc}\n")
        return EXIT_FAILED
    out.write(f"{files.public}\n{files.secret}\n")
    out.flush()
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``seqgen`` console script."""
    command = parse_args(argv, os.environ)
    try:
        match command:
            case NextCommand():
                return run_next(command, sys.stdout, sys.stderr)
            case KeygenCommand():
                return run_keygen(command, sys.stdout, sys.stderr)
    except BrokenPipeError:
        # The reader went away (seqgen next ... | head -1): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
