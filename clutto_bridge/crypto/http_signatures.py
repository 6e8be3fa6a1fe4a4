"""RFC 9421 HTTP Message Signatures with our Ed25519 key, through ``http-message-signatures``.

Responses are signed over ``@status``, ``content-type`` and ``content-digest`` (RFC 9530,
``sha-256``); outgoing webhook requests over ``@method``, ``@target-uri``, ``content-type``
and ``content-digest``. Each signature names its key (``keyid``, the JWK thumbprint) and
its creation time. The library computes the digest and the signature base; we only choose
what is covered.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

from clutto_bridge.crypto.signing import key_id, public_jwk

RESPONSE_COMPONENTS = ("@status", "content-type", "content-digest")
REQUEST_COMPONENTS = ("@method", "@target-uri", "content-type", "content-digest")
LABEL = "clutto"


@dataclass
class _Request:
    method: str
    url: str
    headers: MutableMapping[str, str]


@dataclass
class _Response:
    status_code: int
    headers: MutableMapping[str, str]
    request: Any = None


@dataclass
class SigningKeys:
    """The current private key and the public keys still published (current first)."""

    current: Ed25519PrivateKey
    previous: list[Ed25519PublicKey] = field(default_factory=list)

    @property
    def current_id(self) -> str:
        return key_id(self.current.public_key())

    def jwks(self) -> dict[str, Any]:
        """The JWK set published at ``GET /_clutto/v1/keys``: current key first, no duplicates."""
        keys, seen = [], set()
        for public in (self.current.public_key(), *self.previous):
            jwk = public_jwk(public)
            if jwk["kid"] not in seen:
                seen.add(jwk["kid"])
                keys.append(jwk)
        return {"keys": keys}


class MessageSigner:
    """Signs messages in place: adds ``Content-Digest``, ``Signature-Input`` and ``Signature``."""

    def __init__(self, keys: SigningKeys) -> None:
        self.key_id = keys.current_id
        self._signer = HTTPMessageSigner(
            signature_algorithm=algorithms.ED25519,
            key_resolver=MappingKeyResolver(public_keys={}, private_keys={self.key_id: keys.current}),
        )

    def sign_response(self, status: int, headers: MutableMapping[str, str], body: bytes | None) -> None:
        """``body`` None: a file whose handler set ``Content-Digest`` itself, or (a 304 or a
        range of it) one without; then only the fields present are covered."""
        covered: tuple[str, ...] = RESPONSE_COMPONENTS
        if body is None:
            covered = tuple(c for c in RESPONSE_COMPONENTS if c.startswith("@") or c in headers)
        self._signer.sign(
            _Response(status, headers), key_id=self.key_id, label=LABEL, covered_component_ids=covered,
            body=body, use_existing_digest=body is None and "content-digest" in covered,
        )

    def sign_request(self, method: str, url: str, headers: MutableMapping[str, str], body: bytes) -> None:
        self._signer.sign(
            _Request(method, url, headers), key_id=self.key_id, label=LABEL, covered_component_ids=REQUEST_COMPONENTS,
            body=body,
        )
