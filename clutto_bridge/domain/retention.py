"""Retention settings, legal holds, previews and sweep requests of a team.

The sweep itself is a durable job (jobs/retention_sweep.py); this module decides what it
may touch: the team's lifetime within the operator's bounds, and which rooms are held.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from clutto_bridge.clock import Clock
from clutto_bridge.db.holds import WHOLE_TEAM, HoldStore
from clutto_bridge.db.job import Job, JobKind, JobStore
from clutto_bridge.db.megolm_sessions import MegolmSessions
from clutto_bridge.db.references import ReferenceStore
from clutto_bridge.db.team import RoomStore, Team, TeamRoom, TeamStore
from clutto_bridge.db.timeline import TimelineIndex
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.errors import Conflict, InvalidInput, NotAllowed, NotFound
from clutto_bridge.domain.queue import JobQueue
from clutto_bridge.domain.service import TeamService
from clutto_bridge.durations import DurationError, format_duration, minutes_hint, parse_duration
from clutto_bridge.matrix.admin import SynapseAdmin
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.policy.audit_actions import AuditAction
from clutto_bridge.policy.retention import (
    RedactMode,
    RedactModeNotAllowed,
    RetentionBounds,
    RetentionOutOfBounds,
    RoomPath,
    cutoff,
    effective_redact_mode,
    media_urls,
    removable,
    room_path,
    team_redact_mode,
)
from clutto_bridge.policy.session_keys import may_share

log = logging.getLogger("clutto.retention")

RETENTION = "m.room.retention"
__all__ = ["RetentionService", "RoomPreview", "RoomSessions", "WHOLE_TEAM"]


@dataclass
class RoomPreview:
    room_id: str
    name: str
    events: int
    held: bool


@dataclass
class RoomSessions:
    """The bot's Megolm sessions of one room: held now, and deleted by sweeps."""

    room_id: str
    name: str
    kept: int
    deleted: int


@dataclass(kw_only=True, eq=False, repr=False)
class RetentionService:
    teams: TeamService
    store: TeamStore
    rooms: RoomStore
    hold_store: HoldStore
    references: ReferenceStore
    jobs: JobStore
    queue: JobQueue
    homeserver: Homeserver
    audit: AuditLog
    clock: Clock
    timeline: TimelineIndex
    sessions: MegolmSessions
    bounds: RetentionBounds
    operator_redact: RedactMode  # retention.redact: the operator's choice a team may narrow
    server_name: str  # this homeserver: the only one a purge reaches
    admin: SynapseAdmin

    @property
    def admin_available(self) -> bool:
        """Whether sweeps may purge, as the admin client found at start-up: without the admin
        API retention degrades to redaction only."""
        return self.admin.available

    def lifetime(self, team: Team) -> int:
        return self.bounds.effective(team.retention_seconds)

    def cutoff(self, team: Team) -> int:
        return cutoff(self.clock.now_ms(), self.lifetime(team))

    async def set_lifetime(self, team: Team, text: str, *, actor: str | None) -> int:
        await self.teams.require_manager(team, actor)
        try:
            seconds = self.bounds.check(parse_duration(text))
        except (DurationError, RetentionOutOfBounds) as e:
            raise InvalidInput(" ".join(filter(None, (str(e), minutes_hint(text))))) from None
        previous = team.retention_seconds
        await self.store.set_retention(team, seconds)
        await self.apply_room_state(team)
        await self.audit.record(team, actor, AuditAction.RETENTION_SET, team.id, seconds=seconds, previous=previous)
        return seconds

    async def apply_room_state(self, team: Team, room_ids: list[str] | None = None) -> None:
        """Every team room carries ``m.room.retention`` with the team's maximum lifetime."""
        content = {"max_lifetime": self.teams.retention_ms(team)}
        for room_id in room_ids if room_ids is not None else await self.teams.room_ids(team):
            await self.homeserver.set_state(room_id, RETENTION, content)

    # --- redaction ----------------------------------------------------------------------

    def redact_mode(self, team: Team) -> RedactMode:
        return effective_redact_mode(self.operator_redact, team.redact)

    def check_redact_mode(self, text: str) -> RedactMode:
        try:
            return team_redact_mode(self.operator_redact, text)
        except RedactModeNotAllowed as e:
            raise InvalidInput(str(e)) from None

    async def set_redact_mode(self, team: Team, text: str, *, actor: str | None) -> RedactMode:
        """The team's redaction mode: more redaction than the operator's setting, never less."""
        await self.teams.require_manager(team, actor)
        mode = self.check_redact_mode(text)
        previous = team.redact
        await self.store.set_redact(team, str(mode))
        await self.audit.record(
            team, actor, AuditAction.RETENTION_REDACT_SET, team.id, mode=str(mode), previous=previous
        )
        return mode

    async def room_path(self, team: Team, room_id: str) -> RoomPath:
        """How a sweep removes this room's expired events: ``auto`` redacts where users of
        other homeservers ever joined, since their servers hold copies a purge cannot reach."""
        others = {s for s in await self.timeline.servers(room_id) if s != self.server_name}
        return room_path(self.redact_mode(team), bool(others))

    async def forget_index(self, room_id: str) -> None:
        """The room is deleted: its timeline index and the bot's keys of its messages go too."""
        await self.sessions.forget_room(room_id)
        await self.timeline.forget_room(room_id)

    # --- keys follow retention ------------------------------------------------------------

    async def forget_expired_sessions(self, room_id: str, cutoff_ms: int) -> int:
        """After a sweep of the room: the bot's sessions whose every message expired are deleted,
        so a backup of the bridge database cannot decrypt what the sweep removed."""
        return await self.sessions.forget_expired(room_id, cutoff_ms)

    async def may_share_key(self, room_id: str, session_id: str) -> bool:
        """Whether the bot may forward a session's key on a key request: in a team room, only for a
        session whose indexed messages are all inside the team's window (``policy.session_keys``).
        Other rooms (the chats with the bot) have no retention; mautrix's own rules decide there."""
        team = await self.teams.for_room(room_id)
        if team is None:
            return True
        return may_share(await self.sessions.span(room_id, session_id), self.cutoff(team))

    async def session_counts(self, team: Team) -> list[RoomSessions]:
        """Per room of the team, the sessions the bot holds and those sweeps deleted."""
        return [
            RoomSessions(
                room.room_id,
                room.name,
                await self.sessions.kept(room.room_id),
                await self.sessions.deleted(room.room_id),
            )
            for room in await self.rooms_to_sweep(team)
        ]

    # --- legal hold -------------------------------------------------------------------

    async def _hold_target(self, team: Team, room_id: str | None) -> str:
        if not room_id:
            return WHOLE_TEAM
        room = await self.rooms.get(room_id)
        if room_id != team.space_id and (room is None or room.team_id != team.id):
            raise InvalidInput(f"{room_id} is not a room of {team.name}; a hold covers only the team's own rooms.")
        return room_id

    async def place_hold(self, team: Team, room_id: str | None, reason: str, *, actor: str | None) -> None:
        if actor is not None and actor != team.owner:
            raise NotAllowed(f"Only the owner of {team.name} or the operator may place a legal hold.")
        target = await self._hold_target(team, room_id)
        if await self.hold_store.exists(team.id, target):
            raise Conflict("That hold is already in place.")
        await self.hold_store.place(team.id, target, actor, self.clock.now_ms(), reason or "")
        await self.audit.record(team, actor, AuditAction.HOLD_PLACED, target or team.id, reason=reason or "")

    async def lift_hold(self, team: Team, room_id: str | None, *, actor: str | None) -> None:
        if actor is not None and actor != team.owner:
            raise NotAllowed(f"Only the owner of {team.name} or the operator may lift a legal hold.")
        target = await self._hold_target(team, room_id)
        if not await self.hold_store.exists(team.id, target):
            raise NotFound("There is no such hold.")
        await self.hold_store.lift(team.id, target)
        await self.audit.record(team, actor, AuditAction.HOLD_LIFTED, target or team.id)

    async def holds(self, team: Team) -> set[str]:
        """Held room IDs; ``WHOLE_TEAM`` in the set means every room of the team is held."""
        return await self.hold_store.of_team(team.id)

    async def is_held(self, team: Team, room_id: str) -> bool:
        holds = await self.holds(team)
        return WHOLE_TEAM in holds or room_id in holds

    # --- preview, sweep, status ----------------------------------------------------------

    async def rooms_to_sweep(self, team: Team) -> list[TeamRoom]:
        """Group rooms (archived included) and individual chats; the space has no messages."""
        return await self.rooms.of_team(team.id, include_archived=True)

    async def preview(self, team: Team, *, actor: str | None) -> tuple[int, list[RoomPreview]]:
        """What a sweep would remove now (see ``count_removable``); nothing is changed."""
        await self.teams.require_manager(team, actor)
        cutoff_ms = self.cutoff(team)
        previews = []
        for room in await self.rooms_to_sweep(team):
            held = await self.is_held(team, room.room_id)
            count = 0 if held else await self.count_removable(room.room_id, cutoff_ms)
            previews.append(RoomPreview(room.room_id, room.name, count, held))
        return cutoff_ms, previews

    async def count_removable(self, room_id: str, cutoff_ms: int) -> int:
        """Events a sweep would remove: old ones and the edits and reactions pointing at them.

        Counted in the timeline index where it is complete; where the stream may have missed
        events (a room never read, or not read back since a restart), on the homeserver.
        """
        indexed = await self.timeline.find_room(room_id)
        if indexed is not None and not indexed.needs_fill and indexed.check_mark is None:
            return await self.timeline.count_expired(indexed, cutoff_ms)
        count, token = 0, None
        while True:
            events, token = await self.homeserver.page_forward(room_id, token, 500)
            doomed = [e["event_id"] for e in events if removable(e, cutoff_ms)]
            count += len(doomed) + len(await self.relations_of(room_id, doomed, cutoff_ms))
            if token is None:
                return count

    async def relations_of(self, room_id: str, event_ids: list[str], cutoff_ms: int) -> list[str]:
        """Edits and reactions (noted as they arrived) of the given events, from inside the window.

        Older ones are found by the scan itself.
        """
        if not event_ids:
            return []
        given = set(event_ids)
        related = await self.references.relations_to_any(room_id, event_ids, cutoff_ms)
        return [e for e in dict.fromkeys(related) if e not in given]

    async def remember_references(self, room_id: str, event_id: str, ts: int, content: dict[str, Any]) -> None:
        """Note the media and the relation (edit, reaction) of a team room event.

        Synapse keeps media when it purges events, and edits or reactions may be newer than
        what they point at; retention sweeps use these notes to remove both with the event.
        """
        mxcs = media_urls(content)
        relates = content.get("m.relates_to") or {}
        target = relates.get("event_id") if isinstance(relates, dict) else None
        if not mxcs and not isinstance(target, str):
            return
        if await self.teams.for_room(room_id) is None:
            return
        for mxc in mxcs:
            await self.references.add_media(room_id, event_id, mxc, ts)
        if isinstance(target, str):
            await self.references.add_relation(room_id, event_id, target, str(relates.get("rel_type", "")), ts)

    async def request_sweep(self, team: Team, *, actor: str | None) -> Job:
        await self.teams.require_manager(team, actor)
        return await self.queue.enqueue(JobKind.SWEEP, team.id, {"requested_by": actor})

    async def team_job(self, team: Team, job_id: int) -> Job | None:
        """A job of the team (sweep, export or purge); None for another team's or no job."""
        if not 0 < job_id < 2**63:
            return None
        job = await self.jobs.get(job_id)
        return job if job is not None and job.team_id == team.id else None

    async def jobs_of(self, team: Team) -> list[Job]:
        """The team's latest sweeps, newest first."""
        return await self.jobs.latest(team.id, JobKind.SWEEP)

    def describe(self, team: Team) -> str:
        own = "" if team.retention_seconds is not None else " (the operator's default)"
        return f"{format_duration(self.lifetime(team))}{own}"
