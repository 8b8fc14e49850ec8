"""``seqgen-proxy``: command line -> ProxyConfig -> run(config)."""

from __future__ import annotations

import sys

from seqgen_common.logs import configure_logging
from seqgen_proxy.config import parse_args
from seqgen_proxy.relay import run


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    configure_logging(config.log_level)
    sys.exit(run(config))


if __name__ == "__main__":
    main()
