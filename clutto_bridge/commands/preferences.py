"""A member's own choices."""

from __future__ import annotations

from clutto_bridge.commands.registry import CommandEvent, registry


async def _opted(evt: CommandEvent) -> str:
    """Said after the usage line, so a wrong word still tells the member where they stand."""
    current = "in" if await evt.ctx.notices.marketing_opted_in(evt.sender) else "out"
    return f"You are opted {current} now."


@registry.command(
    "marketing",
    args="opted_in=on|off",
    usage_note=_opted,
    help_text="Whether you receive product news (service notices always reach you).",
    section="Profile and privacy",
    example="marketing off",
)
async def marketing(evt: CommandEvent, *, opted_in: bool) -> None:
    await evt.ctx.notices.set_marketing(evt.sender, opted_in)
    await evt.reply(
        "You will receive product news. `marketing off` stops it."
        if opted_in
        else "You will no longer receive product news. Service notices (security, policy, retention) still reach you."
    )
