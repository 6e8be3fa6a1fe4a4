"""Aggregate counts for metrics and usage reports: every query groups, none returns an identifier."""

from __future__ import annotations

from dataclasses import dataclass

from mautrix.util.async_db import Database


@dataclass(frozen=True)
class TeamSize:
    """One active team as the usage report sees it: when it signed up, its plan, how many members."""

    created_at: int
    plan: str
    members: int


class AnalyticsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def teams_by_plan_and_state(self) -> dict[tuple[str, str], int]:
        rows = await self.db.fetch("SELECT plan, state, COUNT(*) AS n FROM team GROUP BY plan, state")
        return {(row["plan"], row["state"]): row["n"] for row in rows}

    async def members_by_role(self) -> dict[tuple[str, str], int]:
        """Current memberships (invited or joined) of active teams."""
        rows = await self.db.fetch(
            "SELECT m.role, m.membership, COUNT(*) AS n FROM team_member m JOIN team t ON t.id=m.team_id "
            "WHERE t.state='active' AND m.membership IN ('invited','joined') GROUP BY m.role, m.membership"
        )
        return {(row["role"], row["membership"]): row["n"] for row in rows}

    async def rooms_by_kind(self) -> dict[tuple[str, str], int]:
        rows = await self.db.fetch(
            "SELECT kind, archived_at IS NOT NULL AS archived, COUNT(*) AS n FROM team_room "
            "GROUP BY kind, archived_at IS NOT NULL"
        )
        return {(row["kind"], "true" if row["archived"] else "false"): row["n"] for row in rows}

    async def unfinished_jobs(self) -> dict[tuple[str, str], int]:
        rows = await self.db.fetch(
            "SELECT kind, state, COUNT(*) AS n FROM job WHERE state IN ('queued','running') GROUP BY kind, state"
        )
        return {(row["kind"], row["state"]): row["n"] for row in rows}

    async def team_sizes(self) -> list[TeamSize]:
        """Each active team's sign-up time, plan and current member count, in no particular
        team's order and without its id: the report aggregates them at once."""
        rows = await self.db.fetch(
            "SELECT t.created_at, t.plan, COUNT(m.user_id) AS members FROM team t "
            "LEFT JOIN team_member m ON m.team_id=t.id AND m.membership IN ('invited','joined') "
            "WHERE t.state='active' GROUP BY t.id, t.created_at, t.plan ORDER BY t.created_at"
        )
        return [TeamSize(row["created_at"], row["plan"], row["members"]) for row in rows]
