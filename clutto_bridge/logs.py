"""Logging of the bridge process (the CLI and the demo set it up the same way)."""

from __future__ import annotations

import logging


def setup_logging(level: str, file: str = "") -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if file:
        handlers.append(logging.FileHandler(file))
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True
    )
    # aiohttp's access log would record user IDs and tokens in URLs; keep it quiet.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
