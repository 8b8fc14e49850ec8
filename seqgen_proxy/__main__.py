"""``seqgen-proxy``: command line -> ProxyConfig -> run(config)."""

from __future__ import annotations

import logging
import sys

from seqgen_proxy.config import parse_args
from seqgen_proxy.relay import run


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    logging.basicConfig(
        level=config.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    sys.exit(run(config))


if __name__ == "__main__":
    main()
