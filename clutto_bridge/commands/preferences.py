"""A member's own choices."""

from __future__ import annotations

from clutto_bridge.commands.registry import CommandEvent, registry
from clutto_bridge.teams.errors import InvalidInput


@registry.command(
    "marketing",
    help_args="on|off",
    help_text="Whether you receive product news (service notices always reach you).",
    section="You",
)
async def marketing(evt: CommandEvent) -> None:
    if len(evt.args) != 1 or evt.args[0].lower() not in ("on", "off"):
        current = "in" if await evt.ctx.notices.marketing_opted_in(evt.sender) else "out"
        raise InvalidInput(
            f"Usage: `{evt.ctx.settings.bridge.command_prefix} marketing on|off`. You are opted {current} now."
        )
    opted_in = evt.args[0].lower() == "on"
    await evt.ctx.notices.set_marketing(evt.sender, opted_in)
    await evt.reply(
        "You will receive product news. `marketing off` stops it." if opted_in
        else "You will no longer receive product news. Service notices (security, policy, retention) still reach you."
    )
