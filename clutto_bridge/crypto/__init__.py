"""Field encryption at rest (P12): a keyset file of AES-256-GCM keys and the cipher the stores use.

The primitives are the ``cryptography`` library's; nothing here writes a cipher by hand.
Reading and writing the keyset file is the only I/O in this package.
"""

from clutto_bridge.crypto.cipher import Ciphertext, DecryptionError, FieldCipher, Place
from clutto_bridge.crypto.keyset import Keyset, KeysetError, KeysetFile

__all__ = ["Ciphertext", "DecryptionError", "FieldCipher", "Keyset", "KeysetError", "KeysetFile", "Place"]
