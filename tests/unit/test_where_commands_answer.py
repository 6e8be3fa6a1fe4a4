"""Where a command is answered, and which team it is about in the chat with the bot.

Team details and personal data never go to a room that is neither a team's room nor the
user's chat with the bot; a user in several teams names the team for the chat once.
"""

from types import SimpleNamespace

import pytest

from clutto_bridge.commands import registry
from clutto_bridge.commands.registry import CommandEvent, Registry
from clutto_bridge.domain.errors import InvalidInput, NotAllowed, NotFound

ACME = SimpleNamespace(id="tacme", name="Acme", owner="@bo:acme")
GLOBEX = SimpleNamespace(id="tglobex", name="Globex")
TEAM_ROOM, DM, PLAIN = "!general:acme", "!dm:acme", "!party:acme"


class Teams:
    def __init__(self, roles: dict[str, dict[str, str]]) -> None:
        self.roles = roles  # team id -> user -> role

    async def for_room(self, room_id: str):
        return ACME if room_id == TEAM_ROOM else None

    async def get(self, team_id: str):
        for team in (ACME, GLOBEX):
            if team.id == team_id:
                return team
        raise NotFound(team_id)

    async def of_user(self, user_id: str):
        return [t for t in (ACME, GLOBEX) if user_id in self.roles.get(t.id, {})]

    async def role_of(self, team, user_id: str):
        return self.roles.get(team.id, {}).get(user_id)


class Notices:
    def __init__(self) -> None:
        self.chosen: dict[str, str | None] = {}
        self.opened: list[str] = []

    async def current_team(self, room_id: str) -> str | None:
        return self.chosen.get(room_id)

    async def use_team(self, room_id: str, team_id: str | None) -> None:
        self.chosen[room_id] = team_id

    async def direct_room(self, user_id: str) -> str:
        self.opened.append(user_id)
        return DM


def event(args: list[str], room_id: str, roles: dict, notices: Notices | None = None) -> CommandEvent:
    ctx = SimpleNamespace(
        settings=SimpleNamespace(bridge=SimpleNamespace(command_prefix="!clutto")),
        teams=Teams(roles),
        notices=notices or Notices(),
    )
    return CommandEvent(ctx, room_id, "@ann:acme", args, in_management_room=room_id == DM)


BOTH = {"tacme": {"@ann:acme": "owner"}, "tglobex": {"@ann:acme": "member"}}
LINK = "https://matrix.to/#/!dm:acme"


def recording_registry() -> tuple[Registry, list[CommandEvent]]:
    ran: list[CommandEvent] = []
    reg = Registry()

    @reg.command("grant", args="USER", team="manage", help_text="Grant.")
    async def grant(evt: CommandEvent, *, user: str) -> None:
        ran.append(evt)

    @reg.command("note", args="TEXT...", team="member", help_text="Note.")
    async def note(evt: CommandEvent, *, text: str) -> None:
        ran.append(evt)

    @reg.command("peek", discloses=True, help_text="Peek.")
    async def peek(evt: CommandEvent) -> None:
        ran.append(evt)

    @reg.command("mine", private=True, help_text="Mine.")
    async def mine(evt: CommandEvent) -> None:
        ran.append(evt)

    @reg.command("hello", help_text="Hello.")
    async def hello(evt: CommandEvent) -> None:
        ran.append(evt)

    return reg, ran


@pytest.mark.parametrize("name", ["grant", "note", "peek"])
async def test_team_data_is_not_answered_in_a_room_that_is_not_the_teams(name: str) -> None:
    reg, ran = recording_registry()
    with pytest.raises(NotAllowed) as refused:
        await reg.commands[name].handler(event(["x"] if name != "peek" else [], PLAIN, BOTH))
    assert refused.value.message == f"I answer that only in your team's rooms or in our direct chat, {LINK}"
    assert ran == []


async def test_personal_data_elsewhere_points_to_the_chat_without_calling_it_a_team_room() -> None:
    reg, ran = recording_registry()
    with pytest.raises(NotAllowed) as refused:
        await reg.commands["mine"].handler(event([], PLAIN, BOTH))
    assert refused.value.message == f"That is personal: I answer it only in our direct chat, {LINK}"
    assert "team room" not in refused.value.message and ran == []
    with pytest.raises(NotAllowed, match="not in a team room"):
        await reg.commands["mine"].handler(event([], TEAM_ROOM, BOTH))


@pytest.mark.parametrize("room_id", [TEAM_ROOM, DM])
async def test_team_data_is_answered_in_the_teams_rooms_and_in_the_chat(room_id: str) -> None:
    reg, ran = recording_registry()
    await reg.commands["peek"].handler(event([], room_id, BOTH))
    await reg.commands["hello"].handler(event([], PLAIN, BOTH))
    assert len(ran) == 2


@pytest.mark.parametrize(
    "words",
    [["mydata"], ["mydata", "export"], ["team", "info"], ["profile", "show"], ["retention", "show"]],
)
async def test_registered_commands_that_disclose_are_refused_in_a_plain_room(words: list[str]) -> None:
    command, args = registry.find(words)
    notices = Notices()
    with pytest.raises(NotAllowed, match="direct chat, https://matrix.to/"):
        await command.handler(event(args, PLAIN, BOTH, notices))
    assert notices.opened == ["@ann:acme"]


async def test_in_several_teams_the_chat_asks_to_choose_and_then_uses_the_choice() -> None:
    reg, ran = recording_registry()
    notices = Notices()
    with pytest.raises(InvalidInput, match=r"several teams \(Acme, Globex\).*`team use NAME`"):
        await reg.commands["note"].handler(event(["hi"], DM, BOTH, notices))
    notices.chosen[DM] = "tglobex"
    await reg.commands["note"].handler(event(["hi"], DM, BOTH, notices))
    assert ran[-1].team is GLOBEX
    # A manager's command goes to the chosen team too (its services then refuse a plain member),
    # never silently to the only team the user manages.
    await reg.commands["grant"].handler(event(["@bo:acme"], DM, BOTH, notices))
    assert ran[-1].team is GLOBEX
    # In a team room the room decides, whatever the chat's choice.
    await reg.commands["note"].handler(event(["hi"], TEAM_ROOM, BOTH, notices))
    assert ran[-1].team is ACME


async def test_a_chosen_team_the_user_left_is_forgotten() -> None:
    reg, ran = recording_registry()
    notices = Notices()
    notices.chosen[DM] = "tglobex"
    only_acme = {"tacme": {"@ann:acme": "owner"}}
    await reg.commands["note"].handler(event(["hi"], DM, only_acme, notices))
    assert ran[-1].team is ACME and notices.chosen[DM] is None


async def test_team_use_sets_the_team_for_the_chat_by_name_and_only_there() -> None:
    command, args = registry.find(["team", "use", "  globex "])
    notices = Notices()
    replies: list[str] = []
    evt = event(args, DM, BOTH, notices)

    async def reply(text: str) -> None:
        replies.append(text)

    evt.reply = reply
    await command.handler(evt)
    assert notices.chosen[DM] == "tglobex" and replies == ["Commands here are now about **Globex**."]
    command, args = registry.find(["team", "use", "Initech"])
    with pytest.raises(InvalidInput, match=r"no team of that name. Your teams: \*\*Acme\*\*, \*\*Globex\*\*"):
        await command.handler(event(args, DM, BOTH, notices))
    with pytest.raises(NotAllowed, match="chooses the team for our direct chat"):
        await command.handler(event(["Acme"], TEAM_ROOM, BOTH, notices))


OWNER_ONLY = (["team", "delete", "Acme"], ["transfer", "@bo:acme"], ["hold", "on", "team"])


def test_the_owners_commands_are_declared_for_the_owner() -> None:
    """What the services refuse to anyone but the owner is declared so, and so documented."""
    assert {registry.find(words)[0].name for words in OWNER_ONLY} == {
        name for name, command in registry.commands.items() if command.team == "own"
    }


@pytest.mark.parametrize("room_id", [TEAM_ROOM, DM])
@pytest.mark.parametrize("words", OWNER_ONLY)
async def test_an_admin_is_refused_the_owners_commands_before_they_run(words: list[str], room_id: str) -> None:
    command, args = registry.find(words)
    notices = Notices()
    notices.chosen[DM] = "tacme"  # the admin chose Acme for the chat: the refusal still comes first
    admin = {"tacme": {"@ann:acme": "admin", "@bo:acme": "owner"}}
    with pytest.raises(NotAllowed) as refused:
        await command.handler(event(args, room_id, admin, notices))
    assert refused.value.message == f"Only the owner of Acme may use `{command.name}`."


async def test_an_owners_command_in_the_chat_goes_to_the_team_the_user_owns() -> None:
    reg, ran = recording_registry()

    @reg.command("hand over", args="USER", team="own", help_text="Hand over.")
    async def hand_over(evt: CommandEvent, *, user: str) -> None:
        ran.append(evt)

    owns_globex = {"tacme": {"@ann:acme": "admin"}, "tglobex": {"@ann:acme": "owner"}}
    GLOBEX.owner = "@ann:acme"
    try:
        await reg.commands["hand over"].handler(event(["@bo:acme"], DM, owns_globex))
    finally:
        del GLOBEX.owner
    assert ran[-1].team is GLOBEX
    with pytest.raises(NotAllowed, match="You are not the owner of any team"):
        await reg.commands["hand over"].handler(event(["@bo:acme"], DM, {"tacme": {"@ann:acme": "admin"}}))
