"""Encrypting one field of one row: AES-256-GCM with the keyset's primary key.

A stored value reads ``enc1:<key id>:<base64(nonce || ciphertext || tag)>``: the key id says
which key opens it (so old rows stay readable after a rotation and ``keys status`` can count
rows per key in SQL), the nonce is 96 fresh random bits per encryption, and the associated
data is the value's place (table, column, row key), so a ciphertext copied into another
row or column does not decrypt. A value without the prefix is refused, never read as
plaintext.
"""

from __future__ import annotations

import binascii
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import overload

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from clutto_bridge.crypto.keyset import Keyset, KeysetFile

PREFIX = "enc1:"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """A stored value that does not open: tampered, moved, plaintext, or its key is gone."""


@dataclass(frozen=True)
class Place:
    """Where a value lives; bound into its ciphertext as associated data."""

    table: str
    column: str
    row: str

    def associated_data(self) -> bytes:
        # Table and column are our identifiers (no NUL in them); the row key comes last.
        return f"clutto-bridge\0{self.table}\0{self.column}\0{self.row}".encode()


@dataclass(frozen=True, slots=True)
class Ciphertext:
    key_id: int
    sealed: bytes  # nonce || ciphertext || tag

    @classmethod
    def parse(cls, stored: str) -> Ciphertext:
        if not stored.startswith(PREFIX):
            raise DecryptionError("the value is not encrypted")
        key_id, _, body = stored[len(PREFIX) :].partition(":")
        try:
            return cls(int(key_id), binascii.a2b_base64(body, strict_mode=True))
        except (ValueError, binascii.Error):
            raise DecryptionError("the value is not a well-formed ciphertext") from None

    def __str__(self) -> str:
        return f"{PREFIX}{self.key_id}:{binascii.b2a_base64(self.sealed, newline=False).decode()}"


def key_prefix(key_id: int) -> str:
    """What every value under this key starts with (for counting in SQL: ``LIKE 'enc1:7:%'``)."""
    return f"{PREFIX}{key_id}:"


class FieldCipher:
    """The stores' cipher. Built from a keyset file, it re-reads the file when it changes
    (checked at most every ``recheck_s`` seconds), so a running bridge takes up a new primary
    key that ``keys rotate`` wrote without a restart."""

    def __init__(self, keyset: Keyset, source: KeysetFile | None = None, recheck_s: float = 5.0) -> None:
        self._source = source
        self._recheck_s = recheck_s
        self._checked_at = time.monotonic()
        self._loaded_version = source.modified() if source else None
        self._use(keyset)

    @classmethod
    def from_file(cls, path: str | Path, recheck_s: float = 5.0) -> FieldCipher:
        source = KeysetFile(path)
        return cls(source.load(), source, recheck_s)

    def _use(self, keyset: Keyset) -> None:
        self.keyset = keyset
        self._aeads = {k.id: AESGCM(k.material) for k in keyset.keys}
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"clutto-bridge lookup index v1")
        self._index_key = hkdf.derive(keyset.index_secret)

    def reload(self) -> None:
        """Read the keyset file again now (the re-encryption job does, before it starts)."""
        if self._source is not None:
            self._loaded_version = self._source.modified()
            self._use(self._source.load())
        self._checked_at = time.monotonic()

    def _refresh(self) -> None:
        if self._source is None or time.monotonic() - self._checked_at < self._recheck_s:
            return
        self._checked_at = time.monotonic()
        if self._source.modified() != self._loaded_version:
            self.reload()

    @property
    def primary(self) -> int:
        self._refresh()
        return self.keyset.primary

    # NULL stays NULL; a value comes back a value.
    @overload
    def encrypt(self, place: Place, value: str) -> str: ...
    @overload
    def encrypt(self, place: Place, value: None) -> None: ...
    @overload
    def encrypt(self, place: Place, value: str | None) -> str | None: ...

    def encrypt(self, place: Place, value: str | None) -> str | None:
        if value is None:
            return None
        self._refresh()
        nonce = os.urandom(NONCE_BYTES)
        aead = self._aeads[self.keyset.primary]
        sealed = nonce + aead.encrypt(nonce, value.encode(), place.associated_data())
        return str(Ciphertext(self.keyset.primary, sealed))

    @overload
    def decrypt(self, place: Place, stored: str) -> str: ...
    @overload
    def decrypt(self, place: Place, stored: None) -> None: ...
    @overload
    def decrypt(self, place: Place, stored: str | None) -> str | None: ...

    def decrypt(self, place: Place, stored: str | None) -> str | None:
        if stored is None:
            return None
        text = Ciphertext.parse(stored)  # the hot path of every read: kept to one parse and one call
        aead = self._aeads.get(text.key_id)
        if aead is None:
            self.reload()  # a key added by another process since we last looked
            aead = self._aeads.get(text.key_id)
            if aead is None:
                raise DecryptionError(f"no key {text.key_id} in the keyset ({place.table}.{place.column})")
        sealed = text.sealed
        try:
            return aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], place.associated_data()).decode()
        except InvalidTag:
            raise DecryptionError(
                f"{place.table}.{place.column} of row {place.row} does not decrypt (altered, or moved from another row)"
            ) from None

    def rewrap(self, place: Place, stored: str | None) -> str | None:
        """The value under the primary key, or None when it is already (or is NULL)."""
        if stored is None or Ciphertext.parse(stored).key_id == self.primary:
            return None
        return self.encrypt(place, self.decrypt(place, stored))

    def index(self, purpose: str, value: str) -> str:
        """A keyed HMAC-SHA256 of a normalised value, for equality lookups without the plaintext."""
        mac = hmac.HMAC(self._index_key, hashes.SHA256())
        mac.update(purpose.encode() + b"\0" + value.strip().casefold().encode())
        return mac.finalize().hex()
