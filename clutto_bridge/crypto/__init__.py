"""Cryptography the bridge relies on, built from maintained libraries (``cryptography``,
``http-message-signatures``, ``rfc8785``): the Ed25519 signing key, RFC 9421 message
signatures, the canonical encoding and the audit log's hash chain.

A leaf like ``db/`` and ``matrix/``: it imports nothing of the bridge above it.
"""
