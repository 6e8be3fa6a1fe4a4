"""Questions to a homeserver that may not be running (``clutto-bridge doctor``): a short
timeout, and "could not ask" as an answer rather than an error."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp


async def bot_admin_status(address: str, as_token: str, bot: str, timeout: float = 5.0) -> tuple[bool | None, str]:
    """Whether the bot is a server admin: True/False, or None with the reason it is unknown."""
    url = f"{address.rstrip('/')}/_synapse/admin/v1/users/{quote(bot)}/admin"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(
                url, params={"user_id": bot}, headers={"Authorization": f"Bearer {as_token}"}
            ) as resp:
                body = await resp.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError, ValueError) as e:
        return None, f"not checked: homeserver at {address} not reachable ({type(e).__name__})"
    if resp.status == 200 and isinstance(body, dict):
        return bool(body.get("admin")), ""
    if resp.status == 403:  # the homeserver's reason: not an admin, or not this appservice's user
        return False, str(body.get("error", "")) if isinstance(body, dict) else ""
    errcode = body.get("errcode") if isinstance(body, dict) else None
    return (
        None,
        f"not checked: the homeserver answered {resp.status} {errcode or ''} (is the registration loaded?)".strip(),
    )
