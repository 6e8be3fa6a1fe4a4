"""The bridge's Ed25519 signing key: one PEM (PKCS#8) file, readable by its owner only.

The public half is published as a JWK (RFC 8037) and named by its RFC 7638 thumbprint, so
anyone holding a signature and the public key can check which key made it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from clutto_bridge.crypto.canonical import b64url, canonical, from_b64url


class SigningKeyError(Exception):
    """The key file cannot be used: one sentence naming the file and what to do."""


def create_signing_key(path: str | Path) -> Ed25519PrivateKey:
    """Write a fresh key to ``path`` (mode 0600 from the first byte); never overwrite one."""
    path = Path(path)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningKeyError(f"{path} exists already; move it away first to make a new key") from None
    except OSError as e:
        raise SigningKeyError(f"cannot create {path}: {e.strerror}") from None
    with os.fdopen(fd, "wb") as stream:
        stream.write(pem)
    return key


def load_signing_key(path: str | Path) -> Ed25519PrivateKey:
    """Read the key, refusing a file that group or others can read (the key would be shared)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(f"{path} does not exist") from None
    except OSError as e:
        raise SigningKeyError(f"cannot read {path}: {e.strerror}") from None
    if mode & 0o077:
        raise SigningKeyError(f"{path} is readable by group or others (mode {mode & 0o777:o}): chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(f"{path} is not an unencrypted PEM (PKCS#8) private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def load_or_create_signing_key(path: str | Path) -> tuple[Ed25519PrivateKey, bool]:
    """The key at ``path``, made there first if there is none yet; True when it was made."""
    if not Path(path).exists():
        return create_signing_key(path), True
    return load_signing_key(path), False


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}


def key_id(public_key: Ed25519PublicKey) -> str:
    """The RFC 7638 thumbprint: SHA-256 over the key's required members, canonically encoded."""
    return jwk_thumbprint(public_jwk(public_key))


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    required = {name: jwk[name] for name in ("crv", "kty", "x")}
    return b64url(hashlib.sha256(canonical(required)).digest())


def public_key_from_jwk(jwk: dict[str, str]) -> Ed25519PublicKey:
    """The key a JWK describes; ValueError when it is not an Ed25519 public key."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
        raise ValueError("not an Ed25519 public key (JWK kty OKP, crv Ed25519)")
    return Ed25519PublicKey.from_public_bytes(from_b64url(jwk["x"]))
