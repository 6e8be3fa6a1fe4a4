"""Export commands: export the team's data, and whether to export before a purge."""

from __future__ import annotations

from clutto_bridge.commands.registry import CommandEvent, registry
from clutto_bridge.domain.lifecycle import export_number


@registry.command(
    "export",
    team="manage",
    help_text="Export the team's messages, files, members and a checksummed manifest.",
    section="Retention",
)
async def export(evt: CommandEvent) -> None:
    team = evt.declared_team
    answer = {"room_id": evt.room_id, "event_id": evt.event_id, "thread_root": evt.thread_root}
    job = await evt.ctx.lifecycle.request_export(team, actor=evt.sender, answer=answer)
    where = "here" if evt.in_management_room else "in our direct chat"
    await evt.reply(
        f"Export #{export_number(job)} of **{team.name}** queued: messages, files and members, with a manifest "
        f"that lists every file with its SHA-256. When it is ready I tell you {where} where to download it, and "
        "send it as a file too if it is small and our chat is encrypted."
    )


@registry.command(
    "export before-purge",
    args="enabled=on|off",
    team="manage",
    help_text="Whether the team is exported before its trial purge.",
    section="Retention",
    example="export before-purge on",
)
async def export_before_purge(evt: CommandEvent, *, enabled: bool) -> None:
    team = evt.declared_team
    await evt.ctx.lifecycle.set_export_before_purge(team, enabled, actor=evt.sender)
    await evt.reply(f"**{team.name}** is {'now' if enabled else 'no longer'} exported before a purge.")
