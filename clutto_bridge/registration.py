"""The appservice registration the homeserver loads (``app_service_config_files`` in Synapse)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from clutto_bridge.config import Settings
from clutto_bridge.crypto.signing import create_signing_key

# The bot's E2EE device (matrix/crypto.py): the appservice manages its devices (MSC4190), and the
# transactions carry to-device messages (MSC2409, sent with receive_ephemeral) and one-time-key
# counts and device-list changes (MSC3202). The homeserver must enable the last two as well
# (`doctor` checks it). Synapse also honours de.sorunome.msc2409.push_ephemeral, but with both
# it sends every ephemeral event twice.
E2EE_FLAGS = {"receive_ephemeral": True, "org.matrix.msc3202": True, "io.element.msc4190": True}


def registration(settings: Settings) -> dict[str, Any]:
    a, hs = settings.appservice, settings.homeserver
    return {
        "id": a.id,
        "url": a.url,
        "as_token": a.as_token,
        "hs_token": a.hs_token,
        "sender_localpart": a.bot_username,
        "rate_limited": False,
        "namespaces": {
            "users": [{"exclusive": True, "regex": f"@{re.escape(a.bot_username)}:{re.escape(hs.domain)}"}],
            "aliases": [],
            "rooms": [],
        },
        **E2EE_FLAGS,
    }


def write_registration(settings: Settings, path: str | Path) -> None:
    """Write the registration readable by its owner only: it holds both tokens."""
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as stream:
        YAML().dump(registration(settings), stream)
    os.chmod(path, 0o600)


def ensure_signing_key(path: str | Path) -> bool:
    """Create the signing key when it does not exist yet; True if created. An existing key is kept."""
    if Path(path).exists():
        return False
    create_signing_key(path)
    return True
