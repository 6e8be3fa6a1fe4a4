"""Integration commands: which bots and widgets the team allows."""

from __future__ import annotations

from collections.abc import Iterable

from clutto_bridge.commands.registry import CommandEvent, registry


@registry.command(
    "integrations list",
    team="member",
    help_text="Show the bots and widget URL prefixes the team allows.",
    section="Integrations",
)
async def integrations_list(evt: CommandEvent) -> None:
    team = evt.declared_team
    allowed = await evt.ctx.integrations.allowlist(team)

    def lines(values: Iterable[str]) -> str:
        return "\n".join(f"- `{v}`" for v in values) or "- none"

    await evt.reply(
        f"**Integrations of {team.name}**\nBots:\n{lines(allowed.team_bots)}\n"
        f"Widget URL prefixes:\n{lines(allowed.team_widgets)}\n"
        f"Allowed for every team by the operator: {len(allowed.global_bots)} bot(s), "
        f"{len(allowed.global_widgets)} widget prefix(es)."
    )


@registry.command(
    "integrations allow",
    args="value=@BOT|https://PREFIX",
    team="manage",
    help_text="Allow a bot (the Clutto bot invites it to the team's space and rooms) or widgets under a URL prefix.",
    section="Integrations",
    example="integrations allow @helperbot:example.org",
)
async def integrations_allow(evt: CommandEvent, *, value: str) -> None:
    team = evt.declared_team
    kind = await evt.ctx.integrations.allow(team, value, actor=evt.sender)
    await evt.reply(f"Allowed {kind} `{value}` in **{team.name}**.")


@registry.command(
    "integrations deny",
    args="value=@BOT|https://PREFIX",
    team="manage",
    help_text="Take a bot or widget prefix off the list; a denied bot leaves the team's rooms.",
    section="Integrations",
    example="integrations deny https://widgets.example.org/",
)
async def integrations_deny(evt: CommandEvent, *, value: str) -> None:
    team = evt.declared_team
    kind = await evt.ctx.integrations.deny(team, value, actor=evt.sender)
    await evt.reply(f"Denied {kind} `{value}` in **{team.name}**.")


@registry.command(
    "email",
    args="enabled=on|off",
    team="manage",
    help_text="Switch the team's email address on or off: mail to it shows its headers, never its body, "
    "in the team's email room.",
    section="Integrations",
    example="email on",
)
async def email(evt: CommandEvent, *, enabled: bool) -> None:
    team = evt.declared_team
    status = await evt.ctx.email.switch(team, enabled, actor=evt.sender)
    if status.enabled:
        shown = ", ".join(evt.ctx.settings.email.headers)
        await evt.reply(
            f"Email is **on** for **{team.name}**: mail to `{status.address}` appears in the team's email room "
            f"with these headers only: {shown}. Bodies and attachments are dropped, never stored."
        )
    elif status.address:
        await evt.reply(f"Email is **off** for **{team.name}**: mail to `{status.address}` is refused.")
    else:
        await evt.reply(f"Email is **off** for **{team.name}**.")
