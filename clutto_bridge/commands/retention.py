"""Retention and legal hold commands."""

from __future__ import annotations

from clutto_bridge.clock import utc_minute
from clutto_bridge.commands.registry import CommandEvent, registry
from clutto_bridge.db.job import Job
from clutto_bridge.domain.retention import WHOLE_TEAM


def _when(ms: int) -> str:
    return utc_minute(ms)


def describe_job(job: Job) -> str:
    p = job.progress
    rooms = p.get("rooms") or []
    done = min(p.get("room_index", 0), len(rooms))
    line = f"sweep #{job.id}: {job.state}"
    if rooms:
        line += f", {done}/{len(rooms)} rooms, {p.get('removed', p.get('redacted', 0))} events removed"
    if p.get("held"):
        line += f", {len(p['held'])} held room(s) skipped"
    if p.get("events_read"):
        line += f", {p['events_read']} events read from the homeserver"
    if p.get("redaction_only"):
        line += ", REDACTION ONLY (no admin API: nothing purged)"
    if job.error:
        line += f" (last error: {job.error})"
    return line


@registry.command("retention show", team="member", help_text="Show the team's message retention.", section="Retention")
async def retention_show(evt: CommandEvent) -> None:
    team = evt.declared_team
    r = evt.ctx.retention
    await evt.reply(
        f"**{team.name}** keeps messages for {r.describe(team)}: events before {_when(r.cutoff(team))} "
        f"are removed by the next sweep."
    )


@registry.command(
    "retention set",
    args="DURATION",
    team="manage",
    help_text="Set the team's maximum message lifetime, e.g. 30d or 3mo (m is minutes).",
    section="Retention",
    example="retention set 90d",
)
async def retention_set(evt: CommandEvent, *, duration: str) -> None:
    team = evt.declared_team
    await evt.ctx.retention.set_lifetime(team, duration, actor=evt.sender)
    await evt.reply(f"**{team.name}** now keeps messages for {evt.ctx.retention.describe(team)}.")


@registry.command(
    "retention redact",
    args="mode=auto|always|never",
    team="manage",
    help_text="When sweeps redact besides purging: as much as the operator's setting or more.",
    section="Retention",
    example="retention redact always",
)
async def retention_redact(evt: CommandEvent, *, mode: str) -> None:
    team = evt.declared_team
    mode = await evt.ctx.retention.set_redact_mode(team, mode, actor=evt.sender)
    await evt.reply(f"Sweeps of **{team.name}** now redact: `{mode}`. `retention status` shows what each room gets.")


@registry.command(
    "retention preview",
    team="manage",
    help_text="Count what a sweep would remove now, without removing anything.",
    section="Retention",
)
async def retention_preview(evt: CommandEvent) -> None:
    team = evt.declared_team
    cutoff, rooms = await evt.ctx.retention.preview(team, actor=evt.sender)
    total = sum(r.events for r in rooms)
    affected = sum(1 for r in rooms if r.events)
    lines = [f"A sweep now would remove **{total} events in {affected} rooms** (before {_when(cutoff)})."]
    lines += [f"- {r.name}: {'held' if r.held else r.events}" for r in rooms]
    await evt.reply("\n".join(lines))


@registry.command("retention sweep", team="manage", help_text="Run a retention sweep now.", section="Retention")
async def retention_sweep(evt: CommandEvent) -> None:
    team = evt.declared_team
    job = await evt.ctx.retention.request_sweep(team, actor=evt.sender)
    await evt.reply(
        f"Sweep #{job.id} queued. `{evt.ctx.settings.bridge.command_prefix} retention status` shows its progress."
    )


@registry.command("retention status", team="member", help_text="Progress of the team's sweeps.", section="Retention")
async def retention_status(evt: CommandEvent) -> None:
    team = evt.declared_team
    r = evt.ctx.retention
    lines = [f"**Retention of {team.name}**: {r.describe(team)}"]
    if not r.admin_available:
        lines.append(
            "**Warning: the homeserver admin API is not available to the bridge. Sweeps only redact; "
            "old events stay in the homeserver database and media is not deleted.**"
        )
    lines.append(f"Redaction: `{r.redact_mode(team)}` (operator: `{r.operator_redact}`)")
    holds = await r.holds(team)
    keys = {k.room_id: k for k in await r.session_counts(team)}
    for room in await r.rooms_to_sweep(team):
        held = WHOLE_TEAM in holds or room.room_id in holds
        path = (await r.room_path(team, room.room_id)).describe() if r.admin_available else "redact only"
        k = keys.get(room.room_id)
        sessions = f"; encryption keys: {k.kept} kept, {k.deleted} deleted" if k and (k.kept or k.deleted) else ""
        lines.append(f"- {room.name}: {'held' if held else path}{sessions}")
    jobs = await r.jobs_of(team)
    lines += [describe_job(job) for job in jobs[:5]] or ["No sweep has run yet."]
    if holds:
        lines.append("Legal hold: " + ("the whole team" if WHOLE_TEAM in holds else f"{len(holds)} room(s)"))
    await evt.reply("\n".join(lines))


@registry.command(
    "hold",
    args="enabled=on|off [whole_team=team]",
    team="own",
    help_text="Legal hold on this room (or with `team`, the whole team): nothing in it is redacted or purged.",
    section="Retention",
    example="hold on team",
)
async def hold(evt: CommandEvent, *, enabled: bool, whole_team: bool) -> None:
    team = evt.declared_team
    whole = whole_team or await evt.room_team() is None
    room_id = None if whole else evt.room_id
    what = f"the whole team {team.name}" if whole else "this room"
    if enabled:
        await evt.ctx.retention.place_hold(team, room_id, f"placed by {evt.sender}", actor=evt.sender)
        await evt.reply(f"Legal hold placed on {what}: nothing in it is redacted or purged until it is lifted.")
    else:
        await evt.ctx.retention.lift_hold(team, room_id, actor=evt.sender)
        await evt.reply(f"Legal hold on {what} lifted.")
