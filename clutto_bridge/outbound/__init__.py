"""Outgoing HTTP to receivers the operator configured (webhooks). A leaf beside ``matrix/``:
it may use aiohttp, and imports nothing of the bridge above it."""
