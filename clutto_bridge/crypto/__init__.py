"""Keys and signatures (P13): the bridge's Ed25519 signing key and RFC 9421 message signatures.

A leaf like ``db/`` and ``matrix/``: it imports nothing of the bridge above it.
"""
