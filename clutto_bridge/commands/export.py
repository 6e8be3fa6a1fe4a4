"""Export commands: export the team's data, and whether to export before a purge."""

from __future__ import annotations

from clutto_bridge.commands.registry import CommandEvent, registry


@registry.command(
    "export",
    team="manage",
    help_text="Export the team's messages, files, members and a checksummed manifest.",
    section="Retention",
)
async def export(evt: CommandEvent) -> None:
    team = evt.declared_team
    job = await evt.ctx.lifecycle.request_export(team, actor=evt.sender)
    folder = evt.ctx.lifecycle.export_folder(team.id, job.id)
    await evt.reply(f"Export #{job.id} of **{team.name}** queued; it is written to `{folder}` (manifest.json lists every file with its SHA-256).")


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
