"""What the three daemons share: their common flags, process limits, logging, signals and run().

(The CURVE flags of a daemon's public socket are here too: they are argparse,
which the client side of seqgen_common.curve does not need.)

Each daemon goes command line -> typed config -> ``run(config)``; ``start``
applies the common part of the config (logging to stderr, the open-file limit
raised to its hard limit, an optional memory ceiling) and ``serve`` runs a
daemon object until SIGTERM or SIGINT, whose handlers only set a flag.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated, Final, Protocol, TypeAlias, TypeVar

import msgspec

from seqgen_common import __version__, logs
from seqgen_common.curve import CurveServer, read_allowed_keys, read_key_pair
from seqgen_common.errors import ConfigError, StartupError
from seqgen_common.logs import LOG_FORMATS

__all__ = [
    "Daemon", "MemoryLimitMb", "add_curve_flags", "add_daemon_flags", "curve_from_flags", "main",
    "serve", "start",
]

log = logging.getLogger(__name__)

LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")

MemoryLimitMb: TypeAlias = Annotated[int, msgspec.Meta(ge=0)]
"""The type of every daemon config's ``memory_limit_mb`` (its bound: seqgen_common.bounds)."""


_D = TypeVar("_D", bound="Daemon")


class Daemon(Protocol):
    def request_stop(self) -> None:
        """Ask the loop to stop (called from a signal handler: only sets a flag)."""

    def serve(self) -> None:
        """Serve until request_stop(), then stop cleanly."""


def add_daemon_flags(parser: argparse.ArgumentParser) -> None:
    """``--version``, ``--log-level``, ``--log-format`` and ``--memory-limit-mb``, the same on
    every daemon."""
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the program's name and version, then exit")
    parser.add_argument("--log-level", default="INFO", choices=LEVELS, type=str.upper,
                        help="logging threshold (default %(default)s)")
    parser.add_argument("--log-format", default="plain", choices=LOG_FORMATS,
                        help="plain: a line of text per record; json: one JSON object per line "
                        "(time, level, logger, message and the record's fields). Times are UTC "
                        "either way (default %(default)s)")
    parser.add_argument(
        "--memory-limit-mb", type=int, default=0, metavar="MB",
        help="a ceiling on the process's memory (its data segment, RLIMIT_DATA): past it an "
        "allocation fails and the process ends, for its supervisor to restart it. 0: none "
        "(default %(default)s)")


def add_curve_flags(parser: argparse.ArgumentParser, socket_name: str) -> None:
    """``--curve-secret-key`` and ``--curve-clients`` for a daemon's bound public socket."""
    parser.add_argument(
        "--curve-secret-key", type=Path, metavar="FILE",
        help=f"turn on CURVE encryption on the {socket_name} with this key pair (the "
        "NAME.key_secret file of `seqgen keygen`); clients then need its public key (NAME.key)")
    parser.add_argument(
        "--curve-clients", type=Path, metavar="DIR",
        help="with --curve-secret-key: accept only clients whose public key is in a *.key "
        "certificate in DIR (read at start). Without it any CURVE client is accepted: "
        "encrypted, but not authenticated")


def curve_from_flags(secret_key: Path | None, clients: Path | None) -> CurveServer | None:
    """The CURVE settings those two flags ask for, key files read and checked (ValueError)."""
    if secret_key is None:
        if clients is not None:
            raise ValueError("--curve-clients needs --curve-secret-key")
        return None
    keys = read_key_pair(secret_key, "--curve-secret-key")
    if clients is None:
        return CurveServer(keys)
    return CurveServer(keys, read_allowed_keys(clients, "--curve-clients"),
                       Path(os.path.abspath(clients)))


def _raise_open_files() -> None:
    """Raise the soft limit of open files to the hard limit: every connection is a file."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, hard, exc)
            return
    log.info("open files: limit %d (was %d; the hard limit is %d)", hard, soft, hard,
             extra={"open_files": hard, "was": soft})


def _limit_memory(megabytes: int) -> None:
    if megabytes <= 0:
        return
    limit = megabytes * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY and hard < limit:
        limit = hard
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    log.info("memory: at most %d MB of data; past it the process ends", limit // (1024 * 1024))


def start(log_level: str, memory_limit_mb: int = 0, log_format: str = "plain") -> None:
    """Logging to stderr (supervisord captures it), then the process limits."""
    logs.setup(log_level, log_format)
    _raise_open_files()
    _limit_memory(memory_limit_mb)


class _Config(Protocol):
    @property
    def log_level(self) -> str: ...

    @property
    def memory_limit_mb(self) -> int: ...

    @property
    def log_format(self) -> str: ...


_C = TypeVar("_C", bound=_Config)


def main(parse_args: Callable[[list[str] | None], _C], run: Callable[[_C], int],
         argv: list[str] | None = None) -> None:
    """A daemon's entry point: command line -> config -> ``start`` -> ``run(config)`` -> exit."""
    config = parse_args(argv)
    start(config.log_level, config.memory_limit_mb, config.log_format)
    sys.exit(run(config))


def serve(make: Callable[[], _D], describe: Callable[[_D], None]) -> int:
    """Make the daemon, log what it is (``describe``), serve until a signal; the exit status.

    A ConfigError (what was given cannot work: a new store without instance flags) is
    logged and gives 2, as a bad flag does; a StartupError (address in use, locked data
    directory...) is logged and gives 1.
    """
    try:
        daemon = make()
    except ConfigError as exc:
        log.error("cannot start: %s", exc.message)
        return 2
    except StartupError as exc:
        log.error("cannot start: %s", exc.message)
        return 1

    def on_signal(signum: int, frame: FrameType | None) -> None:
        daemon.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    describe(daemon)
    daemon.serve()
    return 0
