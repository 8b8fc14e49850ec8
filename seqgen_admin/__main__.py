"""``seqgen-admin``: command line (and SEQGEN_ADMIN_TOKEN) -> AdminConfig -> run(config)."""

from __future__ import annotations

import logging
import os
import sys

from seqgen_admin.app import run
from seqgen_admin.config import parse_args


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv, os.environ)
    logging.basicConfig(
        level=config.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    sys.exit(run(config))


if __name__ == "__main__":
    main()
