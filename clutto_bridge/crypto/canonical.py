"""The one canonical encoding of the bridge: JSON as RFC 8785 (JCS) writes it.

Sorted keys, no whitespace, UTF-8, one spelling per number. Whatever is hashed or signed
(audit rows, checkpoints, key thumbprints) is encoded here, so a verifier written in any
language with a JCS library gets the same bytes.
"""

from __future__ import annotations

import base64
from typing import Any

import rfc8785


def canonical(value: Any) -> bytes:
    return rfc8785.dumps(value)


def b64url(data: bytes) -> str:
    """Base64url without padding (as JWK and JWS write binary values)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
