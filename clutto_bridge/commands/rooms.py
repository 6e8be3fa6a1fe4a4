"""Room commands: group rooms in the team's space, direct chats between members."""

from __future__ import annotations

from clutto_bridge.commands.registry import CommandEvent, registry


@registry.command(
    "room create",
    args="NAME...",
    team="manage",
    help_text="Add a group room to the team's space.",
    section="Rooms",
    example="room create Design Reviews",
)
async def room_create(evt: CommandEvent, *, name: str) -> None:
    team = evt.declared_team
    room = await evt.ctx.rooms.create_group(team, name, actor=evt.sender)
    await evt.reply(f"Created **{room.name}** in {team.name} and invited its members.")


@registry.command(
    "room archive",
    args="NAME...",
    team="manage",
    help_text="Archive a group room: read-only, out of the space.",
    section="Rooms",
    example="room archive Design Reviews",
)
async def room_archive(evt: CommandEvent, *, name: str) -> None:
    team = evt.declared_team
    room = await evt.ctx.rooms.archive_group(team, name, actor=evt.sender)
    await evt.reply(f"Archived **{room.name}**.")


@registry.command(
    "dm",
    args="USER",
    team="member",
    help_text="Open a direct chat with a member of your team.",
    section="Rooms",
    example="dm @bob:example.org",
)
async def direct(evt: CommandEvent, *, user: str) -> None:
    team = evt.declared_team
    room, created = await evt.ctx.rooms.direct_chat(team, evt.sender, user)
    if created:
        await evt.reply(f"I opened a direct chat between you and {user}; accept my invite.")
    else:
        await evt.reply(f"You already have a direct chat with {user}: `{room.room_id}`.")


@registry.command(
    "rooms encrypt",
    team="manage",
    section="Rooms",
    help_text="Turn end-to-end encryption on in every room of the team that is not encrypted yet. "
    "It cannot be turned off again; the owner is told first.",
)
async def rooms_encrypt(evt: CommandEvent) -> None:
    team = evt.declared_team
    rooms = await evt.ctx.encryption.encrypt_team(team, actor=evt.sender)
    if not rooms:
        await evt.reply(f"Every room of {team.name} is end-to-end encrypted already.")
        return
    await evt.reply(
        f"Encryption is on in {len(rooms)} more room(s) of {team.name}: the homeserver now stores only "
        "ciphertext of what members write there. It cannot be turned off again."
    )
