"""The facts a before-the-write decision needs, in one indexed query (no homeserver round trip)."""

from __future__ import annotations

from dataclasses import dataclass

from mautrix.util.async_db import Database

from clutto_bridge.db.member import CURRENT


@dataclass(frozen=True)
class GateRow:
    team_id: str
    team_name: str
    state: str
    owner: str
    space_id: str | None
    role: str | None
    membership: str | None
    team_bot: bool
    room_membership: str | None  # the user's membership of this room as the bridge last saw it

    @property
    def current_role(self) -> str | None:
        return self.role if self.membership in CURRENT else None


class GateStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def facts(self, room_id: str, user_id: str) -> GateRow | None:
        """The team of a room (its space or one of its rooms) and ``user_id``'s place in it; None
        for a room of no team. team_room's key, team.space_id's unique index, team_member's key and
        mx_user_profile's key answer it."""
        row = await self.db.fetchrow(
            "SELECT t.id, t.name, t.state, t.owner, t.space_id, m.role, m.membership, "
            "EXISTS (SELECT 1 FROM integration_allow a WHERE a.team_id=t.id AND a.kind='bot' AND a.value=$2) AS team_bot, "
            # mautrix's state store: memberships of the rooms the bot is in, from the events it receives.
            "p.membership AS room_membership "
            "FROM team t LEFT JOIN team_member m ON m.team_id=t.id AND m.user_id=$2 "
            "LEFT JOIN mx_user_profile p ON p.room_id=$1 AND p.user_id=$2 "
            "WHERE t.id = COALESCE((SELECT r.team_id FROM team_room r WHERE r.room_id=$1), "
            "(SELECT s.id FROM team s WHERE s.space_id=$1))",
            room_id, user_id,
        )
        if row is None:
            return None
        return GateRow(
            row["id"], row["name"], row["state"], row["owner"], row["space_id"], row["role"], row["membership"],
            bool(row["team_bot"]), row["room_membership"],
        )
