"""RFC 9421 HTTP Message Signatures with our Ed25519 key.

Responses are signed over ``@status``, ``content-type`` and ``content-digest`` (RFC 9530,
``sha-256``); outgoing webhook requests over ``@method``, ``@target-uri``, ``content-type``
and ``content-digest``. Each signature names its key (``keyid``, the JWK thumbprint) and
its creation time.

Every response covers the same components, so its signature base is one formatted string
(RFC 9421 section 2.5: one line per component, then ``@signature-params``), digested with
SHA-256 and signed with Ed25519 by ``cryptography``: that is the cost of a signature, where
building the base through ``http-message-signatures`` and its Structured Field objects
cost three times as much. A field value the fast path does not handle (a line break, a
control or non-ASCII character) goes to the library, which formats or refuses it as before.
Webhook requests (one per delivery, off the request path) are signed by the library. The
tests verify both with the library's verifier and compare them byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
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


def content_digest(body: bytes) -> str:
    """RFC 9530 ``Content-Digest`` of ``body`` (a Structured Field dictionary of one byte sequence)."""
    return f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode('ascii')}:"


def _field_value(headers: MutableMapping[str, str], name: str) -> str | None:
    """A field's value as RFC 9421 section 2.1 covers it: each line trimmed, lines joined
    with ", "; None when the fast path must leave it to the library (no such field is
    covered then, or a value it would refuse or unfold)."""
    getall = getattr(headers, "getall", None)
    lines = getall(name) if getall is not None else [headers[name]]
    value = ", ".join(line.strip(" \t") for line in lines)
    if not value.isascii() or not value.replace("\t", " ").isprintable():
        return None
    return value


class MessageSigner:
    """Signs messages in place: adds ``Content-Digest``, ``Signature-Input`` and ``Signature``."""

    def __init__(self, keys: SigningKeys, now: Callable[[], float] = time.time) -> None:
        self.key_id = keys.current_id
        self._key = keys.current
        self._now = now
        self._params = f';keyid="{self.key_id}";alg="ed25519"'
        self._signer = HTTPMessageSigner(
            signature_algorithm=algorithms.ED25519,
            key_resolver=MappingKeyResolver(public_keys={}, private_keys={self.key_id: keys.current}),
        )

    def sign_response(self, status: int, headers: MutableMapping[str, str], body: bytes | None) -> None:
        """``body`` None: a file whose handler set ``Content-Digest`` itself, or (a 304 or a
        range of it) one without; then only the fields present are covered."""
        if body is not None:
            headers["Content-Digest"] = content_digest(body)
        covered = ['"@status"']
        base = [f'"@status": {status}']
        for name in ("content-type", "content-digest"):
            if name in headers:
                value = _field_value(headers, name)
                if value is None:
                    return self._library_sign_response(status, headers, body)
                covered.append(f'"{name}"')
                base.append(f'"{name}": {value}')
        inner = f"({' '.join(covered)});created={int(self._now())}{self._params}"
        base.append(f'"@signature-params": {inner}')
        signature = self._key.sign("\n".join(base).encode("ascii"))
        headers["Signature-Input"] = f"{LABEL}={inner}"
        headers["Signature"] = f"{LABEL}=:{base64.b64encode(signature).decode('ascii')}:"

    def _library_sign_response(self, status: int, headers: MutableMapping[str, str], body: bytes | None) -> None:
        covered = tuple(c for c in RESPONSE_COMPONENTS if c.startswith("@") or c in headers)
        self._signer.sign(
            _Response(status, headers),
            key_id=self.key_id,
            label=LABEL,
            covered_component_ids=covered,
            created=datetime.fromtimestamp(int(self._now())),
            body=None,
            use_existing_digest="content-digest" in covered,
        )

    def sign_request(self, method: str, url: str, headers: MutableMapping[str, str], body: bytes) -> None:
        self._signer.sign(
            _Request(method, url, headers),
            key_id=self.key_id,
            label=LABEL,
            covered_component_ids=REQUEST_COMPONENTS,
            created=datetime.fromtimestamp(int(self._now())),
            body=body,
        )
