"""``help``: the registered commands by section, or one command with an example.

In the chat with the bot no prefix is needed, so none is shown there; elsewhere every
command line starts with it.
"""

from __future__ import annotations

from clutto_bridge.commands.registry import SECTIONS, Command, CommandEvent, registry


@registry.command(
    "help",
    args="[COMMAND...]",
    help_text="List the commands you can send, or show one with an example.",
    example="help team create",
)
async def show_help(evt: CommandEvent, *, command: str = "") -> None:
    if command:
        await evt.reply(_one(evt, command.split()))
        return
    lines = ["**Clutto commands**"]
    if evt.in_management_room:
        lines.append(
            f"In this chat with me, send a command as it is. In a team room, start it with "
            f"`{_prefix(evt, force=True).strip()}`."
        )
    lines.append(f"`{_prefix(evt)}help COMMAND` shows one command with an example.")
    for section, commands in _by_section().items():
        lines.append(f"\n**{section}**")
        lines.extend(f"- `{_usage(evt, cmd)}`: {cmd.help_text}" for cmd in commands)
    await evt.reply("\n".join(lines))


def _one(evt: CommandEvent, words: list[str]) -> str:
    command, rest = registry.find(words)
    if command is not None and not rest:
        return _describe(evt, command)
    wanted = " ".join(w.lower() for w in words)
    starting = [cmd for cmd in registry.commands.values() if cmd.name.startswith(wanted + " ")]
    if starting:
        return "\n".join(
            [f"**Commands starting with `{wanted}`**"]
            + [f"- `{_usage(evt, cmd)}`: {cmd.help_text}" for cmd in starting]
        )
    return f"There is no command `{wanted[:40]}`. Send `{_prefix(evt)}help` for the list."


def _describe(evt: CommandEvent, command: Command) -> str:
    lines = [f"`{_usage(evt, command)}`", command.help_text]
    if command.private:
        lines.append("Only in your chat with me.")
    elif command.team == "own":
        lines.append("For the team's owner.")
    elif command.team == "manage":
        lines.append("For the team's owner and admins.")
    lines.append(f"Example: `{_prefix(evt)}{command.example}`")
    return "\n".join(lines)


def _by_section() -> dict[str, list[Command]]:
    """The sections in their fixed order (others after them), the help command left out."""
    sections: dict[str, list[Command]] = {name: [] for name in SECTIONS}
    for cmd in registry.commands.values():
        if cmd.name != "help":
            sections.setdefault(cmd.section, []).append(cmd)
    return {name: commands for name, commands in sections.items() if commands}


def _usage(evt: CommandEvent, command: Command) -> str:
    return f"{_prefix(evt)}{command.name}" + (f" {command.help_args}" if command.help_args else "")


def _prefix(evt: CommandEvent, *, force: bool = False) -> str:
    """The prefix and a space where a command needs it; nothing in the chat with the bot."""
    return "" if evt.in_management_room and not force else evt.ctx.settings.bridge.command_prefix + " "
