"""``seqgen-server``: command line -> ServerConfig -> run(config)."""

from __future__ import annotations

import sys

from seqgen_common.daemon import start
from seqgen_server.config import parse_args
from seqgen_server.server import run


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    start(config.log_level, config.memory_limit_mb)
    sys.exit(run(config))


if __name__ == "__main__":
    main()
