"""Team commands: create a team, show it, choose it for the chat with the bot, invite people."""

from __future__ import annotations

from datetime import UTC, datetime

from clutto_bridge.commands.registry import CommandEvent, current_team, registry
from clutto_bridge.db.team import RoomKind, Team
from clutto_bridge.domain.errors import InvalidInput
from clutto_bridge.domain.service import TeamView


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def describe(view: TeamView) -> str:
    """The team as its members may see it. Direct chats are counted, never named: their name
    and members would tell who talks with whom."""
    t = view.team
    rooms = ", ".join(r.name for r in view.rooms if r.kind != RoomKind.DIRECT) or "none yet"
    direct = sum(1 for r in view.rooms if r.kind == RoomKind.DIRECT)
    members = "\n".join(f"- {m.user_id}: {m.role} ({m.membership})" for m in view.members)
    return (
        f"**{t.name}** (id `{t.id}`, {t.state})\n"
        f"Space: `{t.space_id}`\nOwner: {t.owner}\nRooms: {rooms}\nDirect chats between members: {direct}\n"
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
async def team_create(evt: CommandEvent, *, name: str) -> None:
    # Checked before saying anything, so a refusal is the only answer (and never echoes
    # more than the checked name, which has a bounded length). Keyed by the command's event:
    # run again after a crash, it finishes and confirms the team it started.
    name = await evt.ctx.teams.check_new(name, owner=evt.sender, key=evt.event_id)
    await evt.reply(f"Creating team **{name}**…")
    team = await evt.ctx.teams.create(name, owner=evt.sender, key=evt.event_id)
    view = await evt.ctx.teams.view(team)
    await evt.reply(f"Team created. I invited you to its space and rooms.\n{describe(view)}", listing=True)


@registry.command(
    "team info",
    discloses=True,
    help_text="Show the team of this room (in a chat with me: your teams).",
    section="Teams",
)
async def team_info(evt: CommandEvent) -> None:
    teams = evt.ctx.teams
    team = await evt.room_team()
    shown = [team] if team else await teams.of_user(evt.sender)
    if not shown:
        await evt.reply(
            f"You are in no team yet. Create one with `{evt.ctx.settings.bridge.command_prefix} team create NAME`."
        )
        return
    chosen = None if team else await current_team(evt)
    texts = [describe(await teams.view(t)) for t in shown]
    if chosen:
        texts.append(f"Commands here are about **{chosen.name}** (`team use` changes it).")
    await evt.reply("\n\n".join(texts), listing=True)


async def _my_teams(evt: CommandEvent) -> list[Team]:
    teams = evt.ctx.teams
    return [t for t in await teams.of_user(evt.sender) if await teams.role_of(t, evt.sender)]


@registry.command(
    "team use",
    args="[NAME...]",
    private=True,
    private_refusal="`team use` chooses the team for our direct chat: send it there. Here, commands are "
    "about this room's team.",
    help_text="In our direct chat: choose which of your teams the team commands are about "
    "(without a name: show the choice).",
    section="Teams",
)
async def team_use(evt: CommandEvent, *, name: str = "") -> None:
    mine = await _my_teams(evt)
    names = ", ".join(f"**{t.name}**" for t in mine) or "none"
    if not name:
        chosen = await current_team(evt)
        if chosen:
            await evt.reply(f"Commands here are about **{chosen.name}**. Your teams: {names}.")
        elif len(mine) == 1:
            await evt.reply(f"Commands here are about your only team, **{mine[0].name}**.")
        else:
            await evt.reply(f"No team chosen. Your teams: {names}. Choose one with `team use NAME`.")
        return
    wanted = Team.name_key(name)
    team = next((t for t in mine if Team.name_key(t.name) == wanted or t.id == name), None)
    if team is None:
        raise InvalidInput(f"You are in no team of that name. Your teams: {names}.")
    await evt.ctx.notices.use_team(evt.room_id, team.id)
    await evt.reply(f"Commands here are now about **{team.name}**.")


@registry.command(
    "invite",
    args="USER [ROLE]",
    team="manage",
    help_text="Invite a user to the team's space and rooms (role: admin, member or guest; default member).",
    section="Members",
    example="invite @bob:example.org admin",
)
async def invite(evt: CommandEvent, *, user: str, role: str = "member") -> None:
    team = evt.declared_team
    member = await evt.ctx.members.invite(team, user, role, actor=evt.sender)
    await evt.reply(f"Invited {member.user_id} to **{team.name}** as {member.role}.")


@registry.command(
    "team rename",
    args="NAME...",
    team="manage",
    help_text="Rename the team (and its space).",
    section="Teams",
    example="team rename Acme Labs",
)
async def team_rename(evt: CommandEvent, *, name: str) -> None:
    team = evt.declared_team
    old = team.name
    await evt.ctx.details.update(team, actor=evt.sender, name=name)
    await evt.reply(f"Renamed **{old}** to **{team.name}**.")


@registry.command(
    "team topic",
    args="[TEXT...]",
    team="manage",
    help_text="Set the topic of the team's space.",
    section="Teams",
    example="team topic Where Acme plans its launches",
)
async def team_topic(evt: CommandEvent, *, text: str = "") -> None:
    team = evt.declared_team
    await evt.ctx.details.update(team, actor=evt.sender, topic=text)
    await evt.reply(f"Set the topic of **{team.name}**.")


@registry.command(
    "team avatar",
    args="MXC_URL",
    team="manage",
    help_text="Set the team's avatar (an uploaded mxc:// image).",
    section="Teams",
    example="team avatar mxc://example.org/AbCdEfGh",
)
async def team_avatar(evt: CommandEvent, *, mxc_url: str) -> None:
    team = evt.declared_team
    await evt.ctx.details.update(team, actor=evt.sender, avatar_url=mxc_url)
    await evt.reply(f"Set the avatar of **{team.name}**.")


@registry.command(
    "team delete",
    args="[NAME...]",
    team="own",
    help_text="Delete the team: its space and rooms are shut down and purged. Repeat the name to confirm.",
    section="Teams",
    example="team delete Acme Corp",
)
async def team_delete(evt: CommandEvent, *, name: str = "") -> None:
    team = evt.declared_team
    prefix = evt.ctx.settings.bridge.command_prefix
    if not name:
        await evt.reply(
            f"This deletes **{team.name}**: its space, every room and individual chat are shut down and their "
            f"history purged from the homeserver. This cannot be undone. To confirm, send "
            f"`{prefix} team delete {team.name}`."
        )
        return
    in_team_room = await evt.room_team() is not None
    await evt.ctx.details.delete(team, name, actor=evt.sender)
    if not in_team_room:  # a team room is gone with the team
        await evt.reply(f"Deleted **{team.name}**: its space and rooms are shut down and purged.")
