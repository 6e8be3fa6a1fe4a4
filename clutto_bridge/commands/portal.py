"""``portal``: a one-time sign-in link to the privacy portal, sent only in the chat with the bot."""

from __future__ import annotations

from clutto_bridge.commands.registry import CommandEvent, registry
from clutto_bridge.domain.errors import NotAllowed


@registry.command(
    "portal",
    private=True,
    help_text="A one-time link that signs you in to the privacy portal (your policy, cookies, profile and data; "
    "your teams' settings if you manage one).",
    section="Profile and privacy",
)
async def portal(evt: CommandEvent) -> None:
    access = evt.ctx.portal
    if access is None:
        raise NotAllowed("The privacy portal is switched off on this server (portal.enabled).")
    link = await access.issue_link(evt.sender)
    minutes = max(1, evt.ctx.settings.portal.link_lifetime // 60)
    await evt.reply(
        f"Your sign-in link to the privacy portal, valid once for {minutes} minute(s): {link}\n"
        "Do not forward it: whoever opens it first is signed in as you. It never asks for your password."
    )
