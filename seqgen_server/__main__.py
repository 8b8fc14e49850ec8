"""``seqgen-server``: command line -> config -> run(config), through seqgen_common.daemon."""

from __future__ import annotations

from seqgen_common import daemon
from seqgen_server.config import parse_args
from seqgen_server.server import run


def main(argv: list[str] | None = None) -> None:
    daemon.main(parse_args, run, argv)


if __name__ == "__main__":
    main()
