"""``python -m seqgen_client``: the ``seqgen`` command line."""

from __future__ import annotations

import sys

from seqgen_client.cli import main

if __name__ == "__main__":
    sys.exit(main())
