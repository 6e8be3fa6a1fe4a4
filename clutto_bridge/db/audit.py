"""The record of what the bridge did or refused on a team's behalf (rows only; the service
that writes it is ``teams.audit.AuditLog``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mautrix.util.async_db import Database


@dataclass
class AuditEntry:
    ts: int
    team_id: str | None
    actor: str | None
    action: str
    target: str | None
    detail: dict[str, Any]


class AuditStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, entry: AuditEntry) -> None:
        await self.db.execute(
            "INSERT INTO audit_log (ts, team_id, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
            entry.ts, entry.team_id, entry.actor, entry.action, entry.target, json.dumps(entry.detail, sort_keys=True),
        )

    async def for_team(self, team_id: str, action: str | None = None) -> list[AuditEntry]:
        query = "SELECT ts, team_id, actor, action, target, detail FROM audit_log WHERE team_id=$1"
        if action is None:
            rows = await self.db.fetch(query + " ORDER BY id", team_id)
        else:
            rows = await self.db.fetch(query + " AND action=$2 ORDER BY id", team_id, action)
        return [AuditEntry(**{**row, "detail": json.loads(row["detail"] or "{}")}) for row in rows]
