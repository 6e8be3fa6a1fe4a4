"""Team commands: create a team, show it, invite people."""

from __future__ import annotations

from datetime import datetime, timezone

from clutto_bridge.commands.registry import CommandEvent, registry
from clutto_bridge.db.team import Team
from clutto_bridge.teams.errors import InvalidInput, NotAllowed
from clutto_bridge.teams.service import MANAGERS, TeamView


async def team_here(evt: CommandEvent, *, manage: bool = False) -> Team:
    """The team a command is about: the room's team, or in a direct chat the user's only team."""
    teams = evt.ctx.teams
    team = await teams.for_room(evt.room_id)
    if team:
        return team
    candidates = []
    for candidate in await teams.of_user(evt.sender):
        role = await teams.role_of(candidate, evt.sender)
        if role and (not manage or role in MANAGERS):
            candidates.append(candidate)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise NotAllowed("You are not " + ("an owner or admin of " if manage else "in ") + "any team.")
    names = ", ".join(t.name for t in candidates)
    raise InvalidInput(f"You are in several teams ({names}); send the command in a room of the team you mean.")


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def describe(view: TeamView) -> str:
    t = view.team
    rooms = ", ".join(r.name for r in view.rooms) or "none yet"
    members = "\n".join(f"- {m.user_id}: {m.role} ({m.membership})" for m in view.members)
    return (
        f"**{t.name}** (id `{t.id}`, {t.state})\n"
        f"Space: `{t.space_id}`\nOwner: {t.owner}\nRooms: {rooms}\n"
        f"Plan: {t.plan}, trial ends {_day(t.trial_ends_at)}\n"
        f"Members:\n{members}"
    )


@registry.command(
    "team create",
    help_args="NAME",
    help_text="Create a team: a space with its rooms, owned by you. Team names are unique.",
    section="Teams",
)
async def team_create(evt: CommandEvent) -> None:
    if not evt.rest:
        raise InvalidInput(f"Give the team a name: `{evt.ctx.settings.bridge.command_prefix} team create NAME`.")
    await evt.reply(f"Creating team **{' '.join(evt.args)}**…")
    team = await evt.ctx.teams.create(evt.rest, owner=evt.sender)
    view = await evt.ctx.teams.view(team)
    await evt.reply(f"Team created. I invited you to its space and rooms.\n{describe(view)}")


@registry.command(
    "team info",
    help_text="Show the team of this room (in a chat with me: your teams).",
    section="Teams",
)
async def team_info(evt: CommandEvent) -> None:
    teams = evt.ctx.teams
    team = await teams.for_room(evt.room_id)
    shown = [team] if team else await teams.of_user(evt.sender)
    if not shown:
        await evt.reply(f"You are in no team yet. Create one with `{evt.ctx.settings.bridge.command_prefix} team create NAME`.")
        return
    await evt.reply("\n\n".join([describe(await teams.view(t)) for t in shown]))


@registry.command(
    "invite",
    help_args="USER [ROLE]",
    help_text="Invite a user to the team's space and rooms (role: admin, member or guest; default member).",
    section="Members",
)
async def invite(evt: CommandEvent) -> None:
    if not 1 <= len(evt.args) <= 2:
        raise evt.usage("invite @user:server [role]")
    team = await team_here(evt, manage=True)
    role = evt.args[1] if len(evt.args) == 2 else "member"
    member = await evt.ctx.members.invite(team, evt.args[0], role, actor=evt.sender)
    await evt.reply(f"Invited {member.user_id} to **{team.name}** as {member.role}.")


@registry.command("team rename", help_args="NAME", help_text="Rename the team (and its space).", section="Teams")
async def team_rename(evt: CommandEvent) -> None:
    if not evt.args:
        raise evt.usage("team rename NAME")
    team = await team_here(evt, manage=True)
    old = team.name
    await evt.ctx.team_settings.update(team, actor=evt.sender, name=evt.rest)
    await evt.reply(f"Renamed **{old}** to **{team.name}**.")


@registry.command("team topic", help_args="TEXT", help_text="Set the topic of the team's space.", section="Teams")
async def team_topic(evt: CommandEvent) -> None:
    team = await team_here(evt, manage=True)
    await evt.ctx.team_settings.update(team, actor=evt.sender, topic=evt.rest)
    await evt.reply(f"Set the topic of **{team.name}**.")


@registry.command("team avatar", help_args="MXC_URL", help_text="Set the team's avatar (an uploaded mxc:// image).", section="Teams")
async def team_avatar(evt: CommandEvent) -> None:
    if len(evt.args) != 1:
        raise evt.usage("team avatar mxc://server/media")
    team = await team_here(evt, manage=True)
    await evt.ctx.team_settings.update(team, actor=evt.sender, avatar_url=evt.args[0])
    await evt.reply(f"Set the avatar of **{team.name}**.")


@registry.command(
    "team delete",
    help_args="NAME",
    help_text="Delete the team: its space and rooms are shut down and purged. Owner only; repeat the name to confirm.",
    section="Teams",
)
async def team_delete(evt: CommandEvent) -> None:
    team = await team_here(evt, manage=True)
    prefix = evt.ctx.settings.bridge.command_prefix
    if not evt.args:
        await evt.reply(
            f"This deletes **{team.name}**: its space, every room and individual chat are shut down and their "
            f"history purged from the homeserver. This cannot be undone. To confirm, send "
            f"`{prefix} team delete {team.name}`."
        )
        return
    in_team_room = await evt.ctx.teams.for_room(evt.room_id) is not None
    await evt.ctx.team_settings.delete(team, evt.rest, actor=evt.sender)
    if not in_team_room:  # a team room is gone with the team
        await evt.reply(f"Deleted **{team.name}**: its space and rooms are shut down and purged.")
