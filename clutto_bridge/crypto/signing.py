"""The bridge's Ed25519 signing key: one PEM file, readable by its owner only.

The key signs provisioning API responses and outgoing webhooks (``http_signatures``) and the
audit log's checkpoints. Its public half is published as a JWK (RFC 8037) whose key id is
the RFC 7638 thumbprint, so a receiver can tell keys apart without trusting a name we chose.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class SigningKeyError(Exception):
    """A key file that is missing, unreadable, too open or not an Ed25519 key; names the file."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path} {problem}")
        self.path = str(path)
        self.problem = problem


def create_signing_key(path: str | Path) -> Ed25519PrivateKey:
    """Write a new key to ``path`` (mode 0600 from the first byte); an existing file is refused."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningKeyError(path, "exists already; a signing key is never overwritten") from None
    except OSError as e:
        raise SigningKeyError(path, f"cannot be created: {e.strerror}") from None
    with os.fdopen(fd, "wb") as stream:
        stream.write(pem)
    os.chmod(path, 0o600)
    return key


def load_signing_key(path: str | Path) -> Ed25519PrivateKey:
    """Read the private key; refuse a file that group or others may read (the key is a secret)."""
    pem = _read(path)
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningKeyError(path, f"is readable by group or others (mode {stat.S_IMODE(mode):04o}); chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SigningKeyError(path, "is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(path, "is not an Ed25519 key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """A previous key, still published so that older signatures verify: a public or private PEM."""
    pem = _read(path)
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm):
        try:
            key = serialization.load_pem_private_key(pem, password=None).public_key()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise SigningKeyError(path, "is not a PEM public or private key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(path, "is not an Ed25519 key")
    return key


def _read(path: str | Path) -> bytes:
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except FileNotFoundError:
        raise SigningKeyError(path, "does not exist (generate-registration creates it)") from None
    except IsADirectoryError:
        raise SigningKeyError(path, "is a directory") from None
    except OSError as e:
        raise SigningKeyError(path, f"cannot be read: {e.strerror}") from None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_or_create_signing_key(path: str | Path) -> tuple[Ed25519PrivateKey, bool]:
    """The key at ``path``, made there first if there is none yet; True when it was made."""
    try:
        return create_signing_key(path), True
    except SigningKeyError:
        if not Path(path).exists():
            raise
    return load_signing_key(path), False  # another process made it first, or it was there


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The public key as a JWK (RFC 8037 ``OKP``), with its thumbprint as ``kid``."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}
    return {**jwk, "kid": key_id(public_key), "use": "sig", "alg": "EdDSA"}


def key_id(public_key: Ed25519PublicKey) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256 of the required members in canonical JSON), base64url."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return jwk_thumbprint({"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)})


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 over the required members only, so ``kid``/``use``/``alg`` never change it."""
    required = {name: jwk[name] for name in ("crv", "kty", "x")}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return _b64url(hashlib.sha256(canonical).digest())


def public_key_from_jwk(jwk: dict[str, str]) -> Ed25519PublicKey:
    """The key a JWK describes; ValueError when it is not an Ed25519 public key."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
        raise ValueError("not an Ed25519 public key (JWK kty OKP, crv Ed25519)")
    x = jwk["x"]
    return Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))
