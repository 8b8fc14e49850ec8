"""``seqgen-admin``: command line (and SEQGEN_ADMIN_TOKEN) -> AdminConfig -> run(config)."""

from __future__ import annotations

import os

from seqgen_admin.app import run
from seqgen_admin.config import parse_args
from seqgen_common import daemon


def main(argv: list[str] | None = None) -> None:
    # The admin reads its token from the environment, here, never at import time.
    daemon.main(lambda args: parse_args(args, os.environ), run, argv)


if __name__ == "__main__":
    main()
