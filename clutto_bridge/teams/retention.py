"""Retention settings, legal holds, previews and sweep requests of a team.

The sweep itself is a durable job (jobs/retention_sweep.py); this module decides what it
may touch: the team's lifetime within the operator's bounds, and which rooms are held.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mautrix.types import EventType

from clutto_bridge.db.job import Job, JobStore
from clutto_bridge.db.team import Team, TeamRoom
from clutto_bridge.durations import DurationError, format_duration, parse_duration
from clutto_bridge.jobs.runner import JobRunner
from clutto_bridge.matrix import history
from clutto_bridge.policy.retention import RetentionOutOfBounds, cutoff, removable
from clutto_bridge.teams.errors import Conflict, InvalidInput, NotAllowed, NotFound
from clutto_bridge.teams.members import MemberService

log = logging.getLogger("clutto.retention")

RETENTION = EventType.find("m.room.retention", EventType.Class.STATE)
SWEEP = "retention_sweep"
WHOLE_TEAM = ""


@dataclass
class RoomPreview:
    room_id: str
    name: str
    events: int
    held: bool


class RetentionService:
    def __init__(self, members: MemberService, runner: JobRunner) -> None:
        self.members = members
        self.teams = members.teams
        self.db = members.db
        self.clock = members.clock
        self.settings = members.settings
        self.runner = runner
        self.jobs = JobStore(self.db)
        self.bounds = self.teams.retention_bounds
        # Set at start-up: without the admin API retention degrades to redaction only.
        self.admin_available = True

    def lifetime(self, team: Team) -> int:
        return self.bounds.effective(team.retention_seconds)

    def cutoff(self, team: Team) -> int:
        return cutoff(self.clock.now_ms(), self.lifetime(team))

    async def set_lifetime(self, team: Team, text: str, *, actor: str | None) -> int:
        await self.teams.require_manager(team, actor)
        try:
            seconds = self.bounds.check(parse_duration(text))
        except (DurationError, RetentionOutOfBounds) as e:
            raise InvalidInput(str(e)) from None
        await self.db.execute("UPDATE team SET retention_seconds=$1 WHERE id=$2", seconds, team.id)
        previous = team.retention_seconds
        team.retention_seconds = seconds
        await self.apply_room_state(team)
        await self.members.record(team, actor, "retention_set", team.id, seconds=seconds, previous=previous)
        return seconds

    async def apply_room_state(self, team: Team, room_ids: list[str] | None = None) -> None:
        """Every team room carries ``m.room.retention`` with the team's maximum lifetime."""
        content = {"max_lifetime": self.teams.retention_ms(team)}
        if room_ids is None:
            room_ids = [team.space_id] + [r.room_id for r in await TeamRoom.of_team(self.db, team.id)]
        for room_id in room_ids:
            await self.teams.bot.send_state_event(room_id, RETENTION, content)

    # --- legal hold -------------------------------------------------------------------

    async def _hold_target(self, team: Team, room_id: str | None) -> str:
        if not room_id:
            return WHOLE_TEAM
        room = await TeamRoom.get(self.db, room_id)
        if room_id != team.space_id and (room is None or room.team_id != team.id):
            raise InvalidInput(f"{room_id} is not a room of {team.name}; a hold covers only the team's own rooms.")
        return room_id

    async def place_hold(self, team: Team, room_id: str | None, reason: str, *, actor: str | None) -> None:
        if actor is not None and actor != team.owner:
            raise NotAllowed(f"Only the owner of {team.name} or the operator may place a legal hold.")
        target = await self._hold_target(team, room_id)
        exists = await self.db.fetchval("SELECT 1 FROM legal_hold WHERE team_id=$1 AND room_id=$2", team.id, target)
        if exists:
            raise Conflict("That hold is already in place.")
        await self.db.execute(
            "INSERT INTO legal_hold (team_id, room_id, placed_by, placed_at, reason) VALUES ($1, $2, $3, $4, $5)",
            team.id, target, actor, self.clock.now_ms(), reason or "",
        )
        await self.members.record(team, actor, "hold_placed", target or team.id, reason=reason or "")

    async def lift_hold(self, team: Team, room_id: str | None, *, actor: str | None) -> None:
        if actor is not None and actor != team.owner:
            raise NotAllowed(f"Only the owner of {team.name} or the operator may lift a legal hold.")
        target = await self._hold_target(team, room_id)
        exists = await self.db.fetchval("SELECT 1 FROM legal_hold WHERE team_id=$1 AND room_id=$2", team.id, target)
        if not exists:
            raise NotFound("There is no such hold.")
        await self.db.execute("DELETE FROM legal_hold WHERE team_id=$1 AND room_id=$2", team.id, target)
        await self.members.record(team, actor, "hold_lifted", target or team.id)

    async def holds(self, team: Team) -> set[str]:
        """Held room IDs; ``WHOLE_TEAM`` in the set means every room of the team is held."""
        rows = await self.db.fetch("SELECT room_id FROM legal_hold WHERE team_id=$1", team.id)
        return {r["room_id"] for r in rows}

    async def is_held(self, team: Team, room_id: str) -> bool:
        holds = await self.holds(team)
        return WHOLE_TEAM in holds or room_id in holds

    # --- preview, sweep, status ----------------------------------------------------------

    async def rooms_to_sweep(self, team: Team) -> list[TeamRoom]:
        """Group rooms (archived included) and individual chats; the space has no messages."""
        return await TeamRoom.of_team(self.db, team.id, include_archived=True)

    async def preview(self, team: Team, *, actor: str | None) -> tuple[int, list[RoomPreview]]:
        """What a sweep would remove now, counted on the homeserver; nothing is changed."""
        await self.teams.require_manager(team, actor)
        cutoff_ms = self.cutoff(team)
        previews = []
        for room in await self.rooms_to_sweep(team):
            held = await self.is_held(team, room.room_id)
            count = 0 if held else await self.count_removable(room.room_id, cutoff_ms)
            previews.append(RoomPreview(room.room_id, room.name, count, held))
        return cutoff_ms, previews

    async def count_removable(self, room_id: str, cutoff_ms: int) -> int:
        """Events a sweep would redact: old ones and the edits and reactions pointing at them."""
        count, token = 0, None
        while True:
            events, token = await history.page_forward(self.teams.bot, room_id, token, 500)
            doomed = [e["event_id"] for e in events if removable(e, cutoff_ms)]
            count += len(doomed) + len(await self.relations_of(room_id, doomed, cutoff_ms))
            if token is None:
                return count

    async def relations_of(self, room_id: str, event_ids: list[str], cutoff_ms: int) -> list[str]:
        """Edits and reactions (noted as they arrived) of the given events, from inside the window.

        Older ones are found by the scan itself.
        """
        found: list[str] = []
        for event_id in event_ids:
            rows = await self.db.fetch(
                "SELECT event_id FROM room_relation WHERE room_id=$1 AND target_id=$2 AND ts >= $3",
                room_id, event_id, cutoff_ms,
            )
            found += [r["event_id"] for r in rows if r["event_id"] not in event_ids and r["event_id"] not in found]
        return found

    async def request_sweep(self, team: Team, *, actor: str | None) -> Job:
        await self.teams.require_manager(team, actor)
        return await self.runner.enqueue(SWEEP, team.id, {"requested_by": actor})

    async def jobs_of(self, team: Team) -> list[Job]:
        return await self.jobs.latest(team.id, (SWEEP,))

    def describe(self, team: Team) -> str:
        own = "" if team.retention_seconds is not None else " (the operator's default)"
        return f"{format_duration(self.lifetime(team))}{own}"
