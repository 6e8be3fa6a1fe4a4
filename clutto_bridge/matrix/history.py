"""Reading and redacting room history as the bot (which is in every team room)."""

from __future__ import annotations

import json
from typing import Any

from mautrix.api import Method, Path
from mautrix.appservice import IntentAPI


async def page_forward(bot: IntentAPI, room_id: str, token: str | None, limit: int) -> tuple[list[dict], str | None]:
    """One page of the room's timeline from the beginning (or ``token``) onwards.

    Returns the raw events and the token of the next page (None at the end). Raw JSON is
    used so redaction markers and relations are read exactly as the homeserver sent them.
    """
    query = {"dir": "f", "limit": str(limit), "filter": json.dumps({"lazy_load_members": True})}
    if token:
        query["from"] = token
    data: dict[str, Any] = await bot.api.request(Method.GET, Path.v3.rooms[room_id].messages, query_params=query)
    events = data.get("chunk", [])
    return events, data.get("end") if events else None


async def redact(bot: IntentAPI, room_id: str, event_id: str, reason: str) -> None:
    """Redact as the bot. The raw call skips mautrix's per-call power level lookup: the bot
    outranks everyone in team rooms by construction."""
    txn_id = bot.api.get_txn_id()
    await bot.api.request(Method.PUT, Path.v3.rooms[room_id].redact[event_id][txn_id], {"reason": reason})
