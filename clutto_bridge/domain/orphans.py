"""Purge the spaces and rooms an interrupted team creation left on the homeserver (P1).

Creating a space or room is recorded as pending before the homeserver is asked, under a
marker the room carries in its creation content, and the pending row goes in the same
transaction that records the room as the team's. So after a crash, the rows another
process left are the only creations that can have orphans. At start-up (before teams in
creation are finished and commands from the inbox run again), the rooms the bot is in and
the database does not know are checked against those markers (``policy/orphans.py``
decides) and deleted with purge through the Synapse admin API.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from clutto_bridge.db.team import CreationKind, RoomStore
from clutto_bridge.matrix.admin import SynapseAdmin
from clutto_bridge.matrix.errors import AdminUnavailable, MatrixRequestError
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.policy import orphans
from clutto_bridge.policy.orphans import Verdict

log = logging.getLogger("clutto.orphans")

PURGE_MESSAGE = "This room was left over from an interrupted team creation and belongs to no team."


@dataclass(kw_only=True, eq=False, repr=False)
class Orphans:
    rooms: RoomStore
    homeserver: Homeserver
    admin: SynapseAdmin
    boot: str  # this process: its own pending creations are never orphans

    async def purge(self) -> list[str]:
        """Delete the orphans of creations other processes left unfinished; the rooms deleted.

        Without the admin API nothing is deleted and the rows stay, so a later start tries again."""
        left = await self.rooms.creations_left_by_others(self.boot)
        if not left:
            return []
        markers = {c.marker for c in left if c.kind != CreationKind.LEGACY}
        legacy = any(c.kind == CreationKind.LEGACY for c in left)
        try:
            purged = await self._purge_matching(markers, legacy)
        except AdminUnavailable as e:
            log.warning("Rooms of interrupted team creations may be left on the homeserver: cannot delete them (%s)", e)
            return []
        await self.rooms.forget_creations([c.marker for c in left])
        return purged

    async def _purge_matching(self, markers: set[str], legacy: bool) -> list[str]:
        hs = self.homeserver
        known = await self.rooms.known_room_ids()
        purged = []
        for room_id in await hs.joined_rooms():
            if room_id in known:
                continue
            state = await hs.room_state(room_id)
            found = orphans.verdict(state or [], bot=hs.bot_mxid, markers=markers, legacy=legacy)
            if found == Verdict.HAS_PEOPLE:
                log.warning(
                    "Room %s was made by the bridge for a team creation that never finished, but people are "
                    "in it: left as it is. Delete it with the Synapse admin API if it is not needed.",
                    room_id,
                )
            elif found == Verdict.PURGE:
                await self._delete(room_id)
                purged.append(room_id)
        if purged:
            log.info("Deleted %d room(s) left over from interrupted team creations", len(purged))
        return purged

    async def _delete(self, room_id: str) -> None:
        log.info("Deleting %s: left over from an interrupted team creation, it belongs to no team", room_id)
        try:
            await self.admin.delete_room(room_id, PURGE_MESSAGE)
        except MatrixRequestError as e:
            if e.http_status not in (400, 404):  # already gone
                raise
