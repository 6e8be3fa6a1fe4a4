"""Cryptography the bridge relies on, built from maintained libraries (``cryptography``,
``rfc8785``): the signing key, the canonical encoding and the audit log's hash chain."""
