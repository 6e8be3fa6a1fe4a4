"""Member commands: roles, removal, ownership transfer, new accounts."""

from __future__ import annotations

import secrets

from clutto_bridge.commands.registry import CommandEvent, registry
from clutto_bridge.commands.team import team_here
from clutto_bridge.teams.errors import InvalidInput


@registry.command("role", help_args="USER ROLE", help_text="Change a member's role (admin, member or guest).", section="Members")
async def change_role(evt: CommandEvent) -> None:
    if len(evt.args) != 2:
        raise evt.usage("role @user:server ROLE")
    team = await team_here(evt, manage=True)
    member = await evt.ctx.members.change_role(team, evt.args[0], evt.args[1], actor=evt.sender)
    await evt.reply(f"{member.user_id} is now {member.role} in **{team.name}**.")


@registry.command(
    "remove",
    help_args="USER [deactivate]",
    help_text="Remove a member from the team's space, rooms and individual chats; "
    "`deactivate` also closes an account Clutto created.",
    section="Members",
)
async def remove(evt: CommandEvent) -> None:
    if not 1 <= len(evt.args) <= 2 or (len(evt.args) == 2 and evt.args[1].lower() != "deactivate"):
        raise evt.usage("remove @user:server [deactivate]")
    team = await team_here(evt, manage=True)
    deactivate = len(evt.args) == 2
    member = await evt.ctx.members.remove(team, evt.args[0], actor=evt.sender, deactivate=deactivate)
    extra = " Their account is deactivated." if deactivate else ""
    await evt.reply(f"Removed {member.user_id} from **{team.name}**.{extra}")


@registry.command(
    "transfer", help_args="USER", help_text="Make another member the owner; you become an admin.", section="Members"
)
async def transfer(evt: CommandEvent) -> None:
    if len(evt.args) != 1:
        raise evt.usage("transfer @user:server")
    team = await team_here(evt, manage=True)
    await evt.ctx.members.transfer(team, evt.args[0], actor=evt.sender)
    await evt.reply(f"{team.owner} now owns **{team.name}**; you are an admin.")


@registry.command(
    "account create",
    help_args="USERNAME EMAIL [ROLE]",
    help_text="Create a homeserver account and add it to the team; I tell you its initial password here.",
    section="Members",
)
async def create_account(evt: CommandEvent) -> None:
    if not 2 <= len(evt.args) <= 3:
        raise evt.usage("account create USERNAME EMAIL [ROLE]")
    if not evt.in_management_room:
        raise InvalidInput("Send this in your direct chat with me: my answer carries a password.")
    team = await team_here(evt, manage=True)
    password = secrets.token_urlsafe(12)
    role = evt.args[2] if len(evt.args) == 3 else "member"
    member = await evt.ctx.members.create_account(team, evt.args[0], evt.args[1], password, role, actor=evt.sender)
    await evt.reply(
        f"Created {member.user_id} in **{team.name}** as {member.role}. Initial password: `{password}` "
        "(not stored by Clutto; pass it on privately and ask them to change it)."
    )
