"""Member commands: roles, removal, ownership transfer, new accounts."""

from __future__ import annotations

import secrets

from clutto_bridge.commands.registry import CommandEvent, registry
from clutto_bridge.domain import validation
from clutto_bridge.domain.errors import InvalidInput

SECTION = "Members"


@registry.command(
    "role",
    args="USER ROLE",
    team="manage",
    help_text="Change a member's role (admin, member or guest); ownership moves with `transfer`.",
    section=SECTION,
    example="role @bob:example.org admin",
)
async def change_role(evt: CommandEvent, *, user: str, role: str) -> None:
    team = evt.declared_team
    if role.lower() == "owner":
        prefix = "" if evt.in_management_room else evt.ctx.settings.bridge.command_prefix + " "
        raise InvalidInput(
            f"A team has exactly one owner, so owner is not a role to give. Ownership moves with "
            f"`{prefix}transfer {validation.user_id(user)}`, sent by the owner of **{team.name}**, who then becomes an admin."
        )
    member = await evt.ctx.members.change_role(team, user, role, actor=evt.sender)
    await evt.reply(f"{member.user_id} is now {member.role} in **{team.name}**.")


@registry.command(
    "remove",
    args="USER [deactivate]",
    team="manage",
    help_text="Remove a member from the team's space, rooms and individual chats; "
    "`deactivate` also closes an account Clutto created.",
    section=SECTION,
    example="remove @bob:example.org",
)
async def remove(evt: CommandEvent, *, user: str, deactivate: bool) -> None:
    team = evt.declared_team
    member = await evt.ctx.members.remove(team, user, actor=evt.sender, deactivate=deactivate)
    extra = " Their account is deactivated." if deactivate else ""
    await evt.reply(f"Removed {member.user_id} from **{team.name}**.{extra}")


@registry.command(
    "transfer",
    args="USER",
    team="own",
    help_text="Make another member the owner; you become an admin.",
    section=SECTION,
    example="transfer @bob:example.org",
)
async def transfer(evt: CommandEvent, *, user: str) -> None:
    team = evt.declared_team
    await evt.ctx.members.transfer(team, user, actor=evt.sender)
    await evt.reply(f"{team.owner} now owns **{team.name}**; you are an admin.")


@registry.command(
    "account create",
    args="USERNAME EMAIL [ROLE]",
    team="manage",
    private=True,
    private_refusal="Send this in your direct chat with me: my answer carries a password.",
    help_text="Create a homeserver account and add it to the team; I tell you its initial password here.",
    section=SECTION,
    example="account create bob bob@example.org member",
)
async def create_account(evt: CommandEvent, *, username: str, email: str, role: str = "member") -> None:
    team = evt.declared_team
    password = secrets.token_urlsafe(12)
    member = await evt.ctx.members.create_account(team, username, email, password, role, actor=evt.sender)
    await evt.reply(
        f"Created {member.user_id} in **{team.name}** as {member.role}. Initial password: `{password}` "
        "(not stored by Clutto; pass it on privately and ask them to change it)."
    )
