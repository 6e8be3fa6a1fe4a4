"""Helpers every test may use."""

from __future__ import annotations

from pathlib import Path

from clutto_bridge.config import EXAMPLE_CONFIG
from clutto_bridge.crypto import KeysetFile


def config_with_tokens(config: Path, **replace: str) -> None:
    """Write the example config with its generated secrets filled in and a keyset beside it
    (so the bridge would start), after replacing each ``old`` text by ``new``. The signing key
    is made beside it when the bridge first needs it."""
    text = EXAMPLE_CONFIG.read_text()
    keyset = config.with_name("keyset.json")
    KeysetFile(keyset).ensure(0)
    text = text.replace("keyset: clutto-keyset.json", f"keyset: {keyset}")
    for token in ("as_token: generate", "hs_token: generate", "shared_secret: generate", "metrics_secret: generate"):
        text = text.replace(token, token.replace("generate", "x" * 32))
    for old, new in replace.items():
        text = text.replace(old, new)
    config.write_text(text)
