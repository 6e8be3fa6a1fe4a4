"""Helpers every test may use."""

from __future__ import annotations

from pathlib import Path

from clutto_bridge.config import EXAMPLE_CONFIG
from clutto_bridge.crypto.signing import create_signing_key


def config_with_tokens(config: Path, **replace: str) -> None:
    """Write the example config with its generated secrets filled in and a signing key
    beside it (so the bridge would start), after replacing each ``old`` text by ``new``."""
    text = EXAMPLE_CONFIG.read_text()
    key = config.parent / "signing.key"
    if not key.exists():
        create_signing_key(key)
    text = text.replace("signing_key: signing.key", f"signing_key: {key}")
    for token in ("as_token: generate", "hs_token: generate", "shared_secret: generate", "metrics_secret: generate"):
        text = text.replace(token, token.replace("generate", "x" * 32))
    for old, new in replace.items():
        text = text.replace(old, new)
    config.write_text(text)
