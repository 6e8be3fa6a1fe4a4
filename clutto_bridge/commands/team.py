"""Team commands: create a team, show it, invite people."""

from __future__ import annotations

from datetime import datetime, timezone

from clutto_bridge.commands.registry import CommandEvent, registry
from clutto_bridge.teams.service import TeamView


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
    args="NAME...",
    usage_lead="Give the team a name",
    help_text="Create a team: a space with its rooms, owned by you. Team names are unique.",
    section="Teams",
    example="team create Acme Corp",
)
async def team_create(evt: CommandEvent) -> None:
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
    args="USER [ROLE]",
    team="manage",
    help_text="Invite a user to the team's space and rooms (role: admin, member or guest; default member).",
    section="Members",
    example="invite @bob:example.org admin",
)
async def invite(evt: CommandEvent) -> None:
    team = evt.team
    role = evt.args[1] if len(evt.args) == 2 else "member"
    member = await evt.ctx.members.invite(team, evt.args[0], role, actor=evt.sender)
    await evt.reply(f"Invited {member.user_id} to **{team.name}** as {member.role}.")


@registry.command("team rename", args="NAME...", team="manage", help_text="Rename the team (and its space).", section="Teams", example="team rename Acme Labs")
async def team_rename(evt: CommandEvent) -> None:
    team = evt.team
    old = team.name
    await evt.ctx.details.update(team, actor=evt.sender, name=evt.rest)
    await evt.reply(f"Renamed **{old}** to **{team.name}**.")


@registry.command(
    "team topic", args="[TEXT...]", team="manage", help_text="Set the topic of the team's space.", section="Teams",
    example="team topic Where Acme plans its launches",
)
async def team_topic(evt: CommandEvent) -> None:
    team = evt.team
    await evt.ctx.details.update(team, actor=evt.sender, topic=evt.rest)
    await evt.reply(f"Set the topic of **{team.name}**.")


@registry.command(
    "team avatar", args="MXC_URL", team="manage", help_text="Set the team's avatar (an uploaded mxc:// image).", section="Teams",
    example="team avatar mxc://example.org/AbCdEfGh",
)
async def team_avatar(evt: CommandEvent) -> None:
    team = evt.team
    await evt.ctx.details.update(team, actor=evt.sender, avatar_url=evt.args[0])
    await evt.reply(f"Set the avatar of **{team.name}**.")


@registry.command(
    "team delete",
    args="[NAME...]",
    team="manage",
    help_text="Delete the team: its space and rooms are shut down and purged. Owner only; repeat the name to confirm.",
    section="Teams",
    example="team delete Acme Corp",
)
async def team_delete(evt: CommandEvent) -> None:
    team = evt.team
    prefix = evt.ctx.settings.bridge.command_prefix
    if not evt.args:
        await evt.reply(
            f"This deletes **{team.name}**: its space, every room and individual chat are shut down and their "
            f"history purged from the homeserver. This cannot be undone. To confirm, send "
            f"`{prefix} team delete {team.name}`."
        )
        return
    in_team_room = await evt.ctx.teams.for_room(evt.room_id) is not None
    await evt.ctx.details.delete(team, evt.rest, actor=evt.sender)
    if not in_team_room:  # a team room is gone with the team
        await evt.reply(f"Deleted **{team.name}**: its space and rooms are shut down and purged.")
