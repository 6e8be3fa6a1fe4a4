"""SCIM commands: the team's bearer tokens for its identity provider (docs/admins/scim.md)."""

from __future__ import annotations

from clutto_bridge.clock import utc_minute
from clutto_bridge.commands.registry import CommandEvent, registry

SECTION = "Members"


def _when(ms: int | None) -> str:
    return utc_minute(ms) if ms else "never"


@registry.command(
    "scim token new",
    args="NAME...",
    team="manage",
    private=True,
    private_refusal="Send this in your direct chat with me: my answer carries a secret token.",
    help_text="Make a SCIM token for the team's identity provider; I show it once, here.",
    section=SECTION,
    example="scim token new Okta",
)
async def scim_token_new(evt: CommandEvent, *, name: str) -> None:
    team = evt.declared_team
    token, secret = await evt.ctx.scim.new_token(team, name, actor=evt.sender)
    base = evt.ctx.settings.appservice.url.rstrip("/") + "/_clutto/scim/v2"
    await evt.reply(
        f"SCIM token **{token.name}** (id `{token.id}`) for **{team.name}**:\n\n`{secret}`\n\n"
        f"It is shown only now (Clutto keeps a hash of it). Give it to your identity provider with the "
        f"SCIM base URL `{base}` (as the bridge is reached from the provider). Revoke it with `scim token revoke {token.id}`."
    )


@registry.command(
    "scim token revoke",
    args="ID",
    team="manage",
    help_text="Revoke a SCIM token: the identity provider using it is refused from now on.",
    section=SECTION,
    example="scim token revoke 1a2b3c4d",
)
async def scim_token_revoke(evt: CommandEvent, *, id: str) -> None:  # noqa: A002 - the argument is ID
    team = evt.declared_team
    token = await evt.ctx.scim.revoke_token(team, id, actor=evt.sender)
    await evt.reply(f"Revoked the SCIM token `{token.id}` ({token.name}) of **{team.name}**.")


@registry.command(
    "scim token list",
    team="manage",
    help_text="The team's SCIM tokens: name, id, when made and last used.",
    section=SECTION,
)
async def scim_token_list(evt: CommandEvent) -> None:
    team = evt.declared_team
    tokens = await evt.ctx.scim.tokens(team, actor=evt.sender)
    lines = [
        f"- **{t.name}** `{t.id}`: made {_when(t.created_at)}, last used {_when(t.last_used_at)}"
        + (f", revoked {_when(t.revoked_at)}" if t.revoked_at else "")
        for t in tokens
    ]
    await evt.reply(f"**SCIM tokens of {team.name}**\n" + ("\n".join(lines) or "- none"))
