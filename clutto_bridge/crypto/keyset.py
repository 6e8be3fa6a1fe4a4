"""The keyset: AES-256-GCM keys with ids, one primary (encrypts), the others decrypt only.

The model of Tink's keysets: a key is never changed, only added (``rotate``: a new primary)
and, once no row uses it any more, retired. The file is JSON, written atomically and
readable by its owner only; a file that group or others may read is refused.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32  # AES-256


class KeysetError(Exception):
    """The keyset file is missing, unreadable, too open or malformed: one line naming the file."""


@dataclass(frozen=True)
class Key:
    id: int
    material: bytes = field(repr=False)
    created_at: int  # seconds since the epoch, for the operator's eyes only


@dataclass(frozen=True)
class Keyset:
    primary: int
    keys: tuple[Key, ...]
    # The secret the lookup indexes (keyed HMACs of emails) are derived from. It is not
    # rotated with the keys: rotating it would mean recomputing every index (not built).
    index_secret: bytes = field(default=b"", repr=False)
    # The recovery key of the bot's Matrix cross-signing identity (SSSS, base58 as Element
    # shows it): it opens the identity's private keys stored encrypted on the homeserver, so a
    # new device of the bot is signed by the same identity. Written by the bridge on its first
    # start; kept across rotations; never logged.
    recovery_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        ids = [k.id for k in self.keys]
        if len(set(ids)) != len(ids):
            raise KeysetError("two keys share an id")
        if self.primary not in ids:
            raise KeysetError(f"the primary key {self.primary} is not in the keyset")
        for key in self.keys:
            if len(key.material) != KEY_BYTES:
                raise KeysetError(f"key {key.id} is not a 256-bit key")
        if len(self.index_secret) != KEY_BYTES:
            raise KeysetError("the index secret is not 256 bits")

    @classmethod
    def generate(cls, now_s: int) -> Keyset:
        key = _new_key(set(), now_s)
        return cls(key.id, (key,), secrets.token_bytes(KEY_BYTES))

    def key(self, key_id: int) -> Key | None:
        return next((k for k in self.keys if k.id == key_id), None)

    @property
    def primary_key(self) -> Key:
        return self.key(self.primary)  # type: ignore[return-value]

    def derive(self, key_id: int, info: bytes) -> bytes:
        """A 256-bit secret for one purpose, named by ``info``, from key ``key_id`` (HKDF-SHA256):
        it reveals nothing of the key or of another purpose's secret, and changes with the key."""
        key = self.key(key_id)
        if key is None:
            raise KeysetError(f"there is no key {key_id}")
        return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(key.material)

    def rotated(self, now_s: int) -> Keyset:
        """A new primary; the old keys stay for decryption until retired."""
        key = _new_key({k.id for k in self.keys}, now_s)
        return Keyset(key.id, (*self.keys, key), self.index_secret, self.recovery_key)

    def with_recovery_key(self, recovery_key: str) -> Keyset:
        return Keyset(self.primary, self.keys, self.index_secret, recovery_key)

    def without(self, key_id: int) -> Keyset:
        if key_id == self.primary:
            raise KeysetError(f"key {key_id} is the primary key; rotate first")
        if self.key(key_id) is None:
            raise KeysetError(f"there is no key {key_id}")
        return Keyset(self.primary, tuple(k for k in self.keys if k.id != key_id), self.index_secret, self.recovery_key)

    def to_json(self) -> dict[str, Any]:
        extra = {"matrix_recovery_key": self.recovery_key} if self.recovery_key else {}
        return {
            "primary": self.primary,
            "index_secret": base64.b64encode(self.index_secret).decode(),
            "keys": [
                {
                    "id": k.id,
                    "type": "AES256_GCM",
                    "created_at": k.created_at,
                    "material": base64.b64encode(k.material).decode(),
                }
                for k in self.keys
            ],
            **extra,
        }

    @classmethod
    def from_json(cls, data: Any) -> Keyset:
        """``data``: parsed JSON of any shape; a wrong one is a KeysetError."""
        try:
            keys = tuple(
                Key(int(k["id"]), base64.b64decode(k["material"], validate=True), int(k.get("created_at", 0)))
                for k in data["keys"]
                if k.get("type", "AES256_GCM") == "AES256_GCM" or _unknown_type(k)
            )
            index_secret = base64.b64decode(data["index_secret"], validate=True)
            recovery_key = data.get("matrix_recovery_key")
            if recovery_key is not None and not isinstance(recovery_key, str):
                raise KeysetError("matrix_recovery_key is not a string")
            return cls(int(data["primary"]), keys, index_secret, recovery_key)
        except KeysetError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise KeysetError(f"not a keyset ({type(e).__name__}: {e})") from None


def _unknown_type(key: dict[str, Any]) -> bool:
    raise KeysetError(f"key {key.get('id')} has the unknown type {key.get('type')!r}")


def _new_key(taken: set[int], now_s: int) -> Key:
    key_id = secrets.randbelow(2**31 - 1) + 1
    while key_id in taken:
        key_id = secrets.randbelow(2**31 - 1) + 1
    return Key(key_id, secrets.token_bytes(KEY_BYTES), now_s)


class KeysetFile:
    """The keyset file named by ``security.keyset``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.exists()

    def modified(self) -> float | None:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None

    def load(self) -> Keyset:
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            raise KeysetError(f"{self.path} does not exist (create it with `clutto-bridge keys init`)") from None
        except OSError as e:
            raise KeysetError(f"cannot read {self.path}: {e.strerror}") from None
        if mode & 0o077:
            raise KeysetError(
                f"{self.path} is readable by group or others (mode {mode & 0o777:o}); run chmod 600 {self.path}"
            )
        try:
            data = json.loads(self.path.read_text())
        except OSError as e:
            raise KeysetError(f"cannot read {self.path}: {e.strerror}") from None
        except ValueError:
            raise KeysetError(f"{self.path} is not JSON") from None
        try:
            return Keyset.from_json(data)
        except KeysetError as e:
            raise KeysetError(f"{self.path}: {e}") from None

    def save(self, keyset: Keyset) -> None:
        """Write atomically (temp file + rename), owner-readable from the first byte on."""
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as stream:
            json.dump(keyset.to_json(), stream, indent=2)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def store_recovery_key(self, recovery_key: str) -> None:
        """Add the bot's recovery key to the file as it is now (read again: ``keys rotate``
        may have written it since this process loaded it)."""
        self.save(self.load().with_recovery_key(recovery_key))

    def ensure(self, now_s: int) -> bool:
        """Create the keyset unless the file exists; True when it was created."""
        if self.path.exists():
            return False
        self.create(now_s)
        return True

    def create(self, now_s: int) -> Keyset:
        """A new keyset with one key; refused when the file exists (its keys protect data)."""
        if self.path.exists():
            raise KeysetError(f"{self.path} exists already; its keys may protect data, so it is kept")
        keyset = Keyset.generate(now_s)
        self.save(keyset)
        return keyset
