from __future__ import annotations

from clutto_bridge.commands.registry import CommandEvent, registry


@registry.command("help", help_text="List the commands you can send.")
async def show_help(evt: CommandEvent) -> None:
    prefix = evt.ctx.settings.bridge.command_prefix
    lines = ["**Clutto commands**"]
    if evt.in_management_room:
        lines.append(f"In this chat with me the `{prefix}` prefix is optional.")
    sections: dict[str, list[str]] = {}
    for cmd in registry.commands.values():
        usage = f"{prefix} {cmd.name}" + (f" {cmd.help_args}" if cmd.help_args else "")
        sections.setdefault(cmd.section, []).append(f"`{usage}`: {cmd.help_text}")
    for section, entries in sections.items():
        lines.append(f"\n**{section}**")
        lines.extend(entries)
    await evt.reply("\n".join(lines))
