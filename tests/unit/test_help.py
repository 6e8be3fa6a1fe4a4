"""``help`` and how replies are sent: sections in a fixed order, the prefix only where it is
needed, one command with an example, and replies that relate to the command."""

from types import SimpleNamespace

import pytest

from clutto_bridge.commands import registry
from clutto_bridge.commands.registry import SECTIONS, CommandEvent

TEAM_ROOM, DM = "!general:acme", "!dm:acme"


class Homeserver:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def send_notice(self, room_id: str, text: str, html: str | None = None, **kwargs) -> str:
        self.sent.append({"room_id": room_id, "text": text, "html": html, **kwargs})
        return "$reply"


def event(words: list[str], *, room_id: str = DM, **kwargs) -> CommandEvent:
    ctx = SimpleNamespace(
        settings=SimpleNamespace(bridge=SimpleNamespace(command_prefix="!clutto")), homeserver=Homeserver()
    )
    return CommandEvent(ctx, room_id, "@ada:acme", words, in_management_room=room_id == DM, **kwargs)


async def run_help(words: list[str], room_id: str = DM) -> dict:
    command, args = registry.find(["help", *words])
    evt = event(args, room_id=room_id)
    await command.handler(evt)
    (sent,) = evt.ctx.homeserver.sent
    return sent


def test_every_command_with_required_arguments_has_an_example_that_its_declaration_accepts() -> None:
    for cmd in registry.commands.values():
        if cmd.min_args:
            assert cmd.example != cmd.name, f"{cmd.name} needs an example="
        found, rest = registry.find(cmd.example.split())
        assert found is cmd and cmd.fits(rest), f"the example of {cmd.name!r} does not fit its arguments"


async def test_help_in_the_chat_with_the_bot_lists_sections_in_order_without_the_prefix() -> None:
    sent = await run_help([])
    body = sent["text"]
    positions = [body.index(f"\n{section}\n") for section in SECTIONS]
    assert positions == sorted(positions), body
    assert "- `team create NAME`: " in body and "- `invite USER [ROLE]`: " in body
    assert "`!clutto " not in body  # only where a team room needs it: "start it with `!clutto`"
    assert "<ul>" in sent["html"] and "<strong>Profile and privacy</strong>" in sent["html"]
    assert "General" not in body


async def test_help_in_a_team_room_shows_the_prefix() -> None:
    body = (await run_help([], room_id=TEAM_ROOM))["text"]
    assert "- `!clutto team create NAME`: " in body and "`!clutto help COMMAND`" in body


async def test_help_for_one_command_shows_it_with_an_example() -> None:
    body = (await run_help(["invite"]))["text"]
    assert body.splitlines()[0] == "`invite USER [ROLE]`"
    assert "Example: `invite @bob:example.org admin`" in body and "owner and admins" in body
    body = (await run_help(["TEAM", "create"], room_id=TEAM_ROOM))["text"]
    assert "Example: `!clutto team create Acme Corp`" in body
    body = (await run_help(["contacts"]))["text"]
    assert "`contacts allow`" in body and "`contacts revoke`" in body and "`invite" not in body
    body = (await run_help(["frobnicate"]))["text"]
    assert body == "There is no command `frobnicate`. Send `help` for the list."


@pytest.mark.parametrize("thread", [None, "$root"])
async def test_a_reply_relates_to_the_command_and_mentions_its_sender_and_named_users(thread) -> None:
    evt = event([], event_id="$command", thread_root=thread)
    await evt.reply("Invited @bob:acme to **Acme**.")
    (sent,) = evt.ctx.homeserver.sent
    assert sent["reply_to"] == "$command" and sent["thread_root"] == thread
    assert sent["mentions"] == ["@bob:acme", "@ada:acme"]
    assert sent["html"] == 'Invited <a href="https://matrix.to/#/@bob:acme">@bob:acme</a> to <strong>Acme</strong>.'
    assert sent["text"] == "Invited @bob:acme to Acme."


async def test_a_listing_shows_pills_but_notifies_only_the_sender() -> None:
    evt = event([], event_id="$command")
    await evt.reply("Members:\n" + "\n".join(f"- @m{i}:acme: member" for i in range(4)))
    (sent,) = evt.ctx.homeserver.sent
    assert sent["mentions"] == ["@ada:acme"]
    assert sent["html"].count('<a href="https://matrix.to/#/@m') == 4
