"""``seqgen-admin``: command line (and SEQGEN_ADMIN_TOKEN) -> AdminConfig -> run(config)."""

from __future__ import annotations

import os
import sys

from seqgen_admin.app import run
from seqgen_admin.config import parse_args
from seqgen_common.daemon import start


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv, os.environ)
    start(config.log_level, config.memory_limit_mb)
    sys.exit(run(config))


if __name__ == "__main__":
    main()
