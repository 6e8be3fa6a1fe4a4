"""Each team's own allowlist of integration bots and widget URL prefixes."""

from __future__ import annotations

from mautrix.util.async_db import Database


class IntegrationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def of_team(self, team_id: str) -> list[tuple[str, str]]:
        """(kind, value) pairs, ordered."""
        rows = await self.db.fetch(
            "SELECT kind, value FROM integration_allow WHERE team_id=$1 ORDER BY kind, value", team_id
        )
        return [(r["kind"], r["value"]) for r in rows]

    async def add(self, team_id: str, kind: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO integration_allow (team_id, kind, value) VALUES ($1, $2, $3)", team_id, kind, value
        )

    async def remove(self, team_id: str, kind: str, value: str) -> bool:
        """Take an entry off; False if it was not there."""
        removed = await self.db.fetch(
            "DELETE FROM integration_allow WHERE team_id=$1 AND kind=$2 AND value=$3 RETURNING value",
            team_id,
            kind,
            value,
        )
        return bool(removed)
