"""Cryptography the bridge relies on, built from maintained libraries (``cryptography``,
``http-message-signatures``, ``rfc8785``): field encryption at rest (a keyset file of
AES-256-GCM keys and the cipher the stores use, P12), the Ed25519 signing key, RFC 9421
message signatures (P13), the canonical encoding and the audit log's hash chain (P14).

A leaf like ``db/`` and ``matrix/``: it imports nothing of the bridge above it. Reading and
writing key files is the only I/O here; nothing writes a cipher or a signature scheme by hand.
"""

from clutto_bridge.crypto.cipher import Ciphertext, DecryptionError, FieldCipher, Place
from clutto_bridge.crypto.keyset import Keyset, KeysetError, KeysetFile

__all__ = ["Ciphertext", "DecryptionError", "FieldCipher", "Keyset", "KeysetError", "KeysetFile", "Place"]
