from types import SimpleNamespace

import pytest

from clutto_bridge.commands import registry
from clutto_bridge.commands.registry import CommandEvent, Registry, _html, _plain
from clutto_bridge.domain.errors import InvalidInput, NotAllowed


def test_commands_are_found_by_one_or_two_words() -> None:
    command, args = registry.find(["team", "create", "Acme", "Corp"])
    assert command.name == "team create" and args == ["Acme", "Corp"]
    command, args = registry.find(["INVITE", "@a:b", "admin"])
    assert command.name == "invite" and args == ["@a:b", "admin"]
    assert registry.find(["team"])[0] is None
    assert registry.find([])[0] is None


def test_every_command_has_help() -> None:
    # The bot commands the product promises.
    promised = {
        "help",
        "team create",
        "team info",
        "invite",
        "remove",
        "role",
        "transfer",
        "retention show",
        "retention set",
        "retention preview",
        "hold",
        "export",
        "profile show",
        "profile set",
        "accept",
        "marketing",
        "contacts allow",
        "contacts revoke",
    }
    assert promised <= set(registry.commands), promised - set(registry.commands)
    assert all(c.help_text for c in registry.commands.values())


def test_replies_are_escaped_html_with_plain_body() -> None:
    text = "**Acme <script>** uses `!clutto help`\nline two"
    assert _plain(text) == "Acme <script> uses `!clutto help`\nline two"
    assert _html(text) == "<strong>Acme &lt;script&gt;</strong> uses <code>!clutto help</code><br />\nline two"


# The registry's checks, with a stand-in for the services it reads: the team of a room,
# a user's teams and their role in each.

ACME = SimpleNamespace(id=1, name="Acme")
TEAM_ROOM, DM = "!general:acme", "!dm:acme"


class Teams:
    def __init__(self, roles: dict[str, str]) -> None:
        self.roles = roles
        self.asked = 0

    async def for_room(self, room_id: str):
        self.asked += 1
        return ACME if room_id == TEAM_ROOM else None

    async def of_user(self, user_id: str):
        return [ACME] if user_id in self.roles else []

    async def role_of(self, team, user_id: str):
        return self.roles.get(user_id)


class Notices:
    async def marketing_opted_in(self, user_id: str) -> bool:
        return False

    async def current_team(self, room_id: str) -> str | None:
        return None  # no team chosen with `team use`


def event(args: list[str], *, sender: str = "@boss:acme", room_id: str = DM) -> CommandEvent:
    ctx = SimpleNamespace(
        settings=SimpleNamespace(bridge=SimpleNamespace(command_prefix="!clutto")),
        teams=Teams({"@boss:acme": "owner", "@pat:acme": "member"}),
        notices=Notices(),
    )
    return CommandEvent(ctx, room_id, sender, args, in_management_room=room_id == DM)


def grant_registry() -> tuple[Registry, list[CommandEvent]]:
    ran: list[CommandEvent] = []
    reg = Registry()

    @reg.command("grant", args="USER [ROLE]", team="manage", help_text="Grant a role.")
    async def grant(evt: CommandEvent, *, user: str, role: str = "member") -> None:
        ran.append(evt)

    @reg.command("note", args="TEXT...", team="member", help_text="Leave a note.")
    async def note(evt: CommandEvent, *, text: str) -> None:
        ran.append(evt)

    return reg, ran


def test_usage_line_and_argument_count_come_from_the_declaration() -> None:
    reg, _ = grant_registry()
    grant, note = reg.commands["grant"], reg.commands["note"]
    assert grant.help_args == "USER [ROLE]"
    assert grant.usage_line("!clutto") == "!clutto grant @user:server [ROLE]"
    assert (grant.min_args, grant.max_args) == (1, 2)
    assert note.help_args == "TEXT" and note.usage_line("!clutto") == "!clutto note TEXT"
    assert (note.min_args, note.max_args) == (1, None)


@pytest.mark.parametrize("args", [[], ["@a:acme", "admin", "extra"]])
async def test_wrong_count_is_refused_with_usage_before_the_handler_or_team(args: list[str]) -> None:
    reg, ran = grant_registry()
    evt = event(args)
    with pytest.raises(InvalidInput) as refused:
        await reg.commands["grant"].handler(evt)
    assert refused.value.message == "Usage: `!clutto grant @user:server [ROLE]`."
    assert ran == [] and evt.ctx.teams.asked == 0


async def test_manager_command_refuses_a_plain_member_and_runs_for_the_owner() -> None:
    reg, ran = grant_registry()
    with pytest.raises(NotAllowed, match="You are not an owner or admin of any team."):
        await reg.commands["grant"].handler(event(["@a:acme"], sender="@pat:acme"))
    assert ran == []
    await reg.commands["grant"].handler(event(["@a:acme", "admin"]))
    assert ran[0].team is ACME


async def test_member_command_resolves_the_team_for_a_plain_member() -> None:
    reg, ran = grant_registry()
    await reg.commands["note"].handler(event(["hello", "team"], sender="@pat:acme"))
    assert ran[0].team is ACME and ran[0].rest == "hello team"
    with pytest.raises(NotAllowed, match="You are not in any team."):
        await reg.commands["note"].handler(event(["hi"], sender="@stranger:elsewhere"))


async def test_the_rooms_team_is_looked_up_once_per_command() -> None:
    # The place check, the team the command is about and the handler all ask for it.
    reg, ran = grant_registry()
    evt = event(["@a:acme"], room_id=TEAM_ROOM)
    await reg.commands["grant"].handler(evt)
    assert ran[0].team is ACME and await evt.room_team() is ACME
    assert evt.ctx.teams.asked == 1


@pytest.mark.parametrize("verb", ["allow", "deny"])
async def test_integrations_with_two_values_name_the_real_syntax(verb: str) -> None:
    command, args = registry.find(["integrations", verb, "@a:acme", "@b:acme"])
    with pytest.raises(InvalidInput) as refused:
        await command.handler(event(args, room_id=TEAM_ROOM))
    assert refused.value.message == f"Usage: `!clutto integrations {verb} @BOT|https://PREFIX`."


async def test_declared_choices_are_checked_and_a_note_may_follow_the_usage() -> None:
    command, args = registry.find(["marketing", "maybe"])
    with pytest.raises(InvalidInput) as refused:
        await command.handler(event(args))
    assert refused.value.message == "Usage: `!clutto marketing on|off`. You are opted out now."
    for words in (["hold", "maybe"], ["hold", "on", "room"], ["remove", "@a:acme", "please"]):
        command, args = registry.find(words)
        with pytest.raises(InvalidInput, match="^Usage: "):
            await command.handler(event(args, room_id=TEAM_ROOM))


@pytest.mark.parametrize(
    ("words", "refusal"),
    [
        (["mydata"], "That is personal: send it in your direct chat with me, not in a team room."),
        (["mydata", "export"], "That is personal: send it in your direct chat with me, not in a team room."),
        (["contacts", "list"], "That is personal: send it in your direct chat with me, not in a team room."),
        (
            ["account", "create", "ada", "ada@acme.example"],
            "Send this in your direct chat with me: my answer carries a password.",
        ),
    ],
)
async def test_personal_commands_are_refused_in_a_team_room(words: list[str], refusal: str) -> None:
    command, args = registry.find(words)
    with pytest.raises(NotAllowed) as refused:
        await command.handler(event(args, room_id=TEAM_ROOM))
    assert refused.value.message == refusal


async def test_team_create_without_a_name_asks_for_one() -> None:
    command, args = registry.find(["team", "create"])
    with pytest.raises(InvalidInput) as refused:
        await command.handler(event(args))
    assert refused.value.message == "Give the team a name: `!clutto team create NAME`."


async def test_declared_arguments_reach_the_handler_as_typed_keywords() -> None:
    reg, got = Registry(), []

    @reg.command("hold", args="enabled=on|off [whole_team=team]", help_text="Hold.")
    async def hold(evt: CommandEvent, *, enabled: bool, whole_team: bool) -> None:
        got.append({"enabled": enabled, "whole_team": whole_team})

    @reg.command("say", args="USER [TEXT...]", help_text="Say.")
    async def say(evt: CommandEvent, *, user: str, text: str = "(nothing)") -> None:
        got.append({"user": user, "text": text})

    @reg.command("mode", args="auto|always|never", help_text="Mode.")
    async def mode(evt: CommandEvent, *, auto_always_never: str) -> None:
        got.append(auto_always_never)

    assert reg.commands["hold"].help_args == "on|off [team]"  # help shows the labels, not the names
    for words in (["ON", "team"], ["off"]):
        await reg.commands["hold"].handler(event(words))
    await reg.commands["say"].handler(event(["@a:acme", "hello", "there"]))
    await reg.commands["say"].handler(event(["@a:acme"]))
    await reg.commands["mode"].handler(event(["Always"]))
    assert got == [
        {"enabled": True, "whole_team": True},
        {"enabled": False, "whole_team": False},
        {"user": "@a:acme", "text": "hello there"},
        {"user": "@a:acme", "text": "(nothing)"},
        "always",
    ]


def test_a_handler_that_does_not_take_its_declared_arguments_is_rejected() -> None:
    async def only_event(evt: CommandEvent) -> None: ...

    async def no_default(evt: CommandEvent, *, user: str, role: str) -> None: ...

    with pytest.raises(ValueError, match="no keyword argument 'user'"):
        Registry().command("x", args="USER", help_text="x")(only_event)
    with pytest.raises(ValueError, match="'role' needs a default"):
        Registry().command("x", args="USER [ROLE]", help_text="x")(no_default)
    with pytest.raises(ValueError, match="same name"):
        Registry().command("x", args="USER user=NAME", help_text="x")


def test_a_declaration_that_cannot_be_checked_is_rejected() -> None:
    with pytest.raises(ValueError):
        Registry().command("x", args="[A] B", help_text="x")
    with pytest.raises(ValueError):
        Registry().command("x", args="A... B", help_text="x")


def test_help_lists_the_team_commands_first_as_before() -> None:
    sections = list(dict.fromkeys(c.section for c in registry.commands.values()))
    assert sections[:2] == ["Teams", "Members"]
    assert registry.commands["invite"].help_args == "USER [ROLE]"


@pytest.mark.parametrize("words", [["contacts", "allow"], ["contacts", "revoke"], ["contacts", "list"]])
async def test_contact_commands_belong_in_the_chat_with_the_bot(words: list[str]) -> None:
    command, args = registry.find(words)
    assert command.private
    with pytest.raises(NotAllowed):
        await command.handler(event(args, room_id=TEAM_ROOM))
