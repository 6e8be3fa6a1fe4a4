"""The appservice registration the homeserver loads (``app_service_config_files`` in Synapse)."""

from __future__ import annotations

import re
from typing import Any

from clutto_bridge.config import Settings


def registration(settings: Settings) -> dict[str, Any]:
    a, hs = settings.appservice, settings.homeserver
    return {
        "id": a.id,
        "url": a.address,
        "as_token": a.as_token,
        "hs_token": a.hs_token,
        "sender_localpart": a.bot_username,
        "rate_limited": False,
        "namespaces": {
            "users": [{"exclusive": True, "regex": f"@{re.escape(a.bot_username)}:{re.escape(hs.domain)}"}],
            "aliases": [],
            "rooms": [],
        },
    }
