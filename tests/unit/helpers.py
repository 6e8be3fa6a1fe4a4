"""What the unit tests share: the example config, an audit log to verify, signed messages."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import HTTPMessageVerifier, MappingKeyResolver, algorithms
from ruamel.yaml import YAML

from clutto_bridge.config import EXAMPLE_CONFIG
from clutto_bridge.crypto import chain
from clutto_bridge.crypto.signing import key_id, public_jwk
from clutto_bridge.db.audit import AuditRow, Checkpoint


def example() -> dict:
    return YAML(typ="safe").load(EXAMPLE_CONFIG.read_text())


def with_value(key: str, value) -> dict:
    data = example()
    *parents, last = key.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[last] = value
    return data


def make_log(count: int, key: Ed25519PrivateKey, every: int = 4) -> tuple[list[AuditRow], list[Checkpoint]]:
    rows, checkpoints, previous = [], [], chain.GENESIS
    for n in range(1, count + 1):
        detail = {"n": n, "name": "Zoë"}
        digest = chain.row_hash(n, 1000 + n, "team", "@a:x", "member_removed", f"@u{n}:x", detail, previous)
        rows.append(AuditRow(n, 1000 + n, "team", "@a:x", "member_removed", f"@u{n}:x", detail, previous, digest))
        previous = digest
        if n % every == 0:
            signer, signature = chain.sign_head(key, n, digest, 2000 + n)
            checkpoints.append(Checkpoint(len(checkpoints) + 1, n, digest, 2000 + n, signer, signature))
    return rows, checkpoints


def keys_of(*keys: Ed25519PrivateKey) -> dict[str, dict[str, str]]:
    return {key_id(k.public_key()): public_jwk(k.public_key()) for k in keys}


class Message:
    """A response or request as the verifier reads it (headers, status or method and URL)."""

    def __init__(self, headers, status_code: int | None = None, method: str | None = None, url: str | None = None):
        self.headers = headers
        if status_code is not None:
            self.status_code = status_code
        else:
            self.method, self.url = method, url


def verifier_from(jwk: dict) -> HTTPMessageVerifier:
    raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
    public = Ed25519PublicKey.from_public_bytes(raw)
    return HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={jwk["kid"]: public}, private_keys={}),
    )
