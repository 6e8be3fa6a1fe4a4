"""Domain events for the operator's webhook receivers: one durable delivery job per
receiver that subscribed to the event (``webhooks:`` in the config).

The events: ``audit`` (every audit log entry, as it is written), ``team.purged`` (a team's
rooms were deleted with purge and its rows removed), ``export.ready`` (an export finished).
The job runner delivers them with retries; a crash between the event and its delivery
loses nothing, because the job is in the database before the event's caller goes on.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from clutto_bridge.clock import Clock
from clutto_bridge.config import WebhookSettings
from clutto_bridge.db.audit import AuditEntry
from clutto_bridge.db.job import Job, JobKind

log = logging.getLogger("clutto.webhooks")


class DeliveryQueue(Protocol):
    async def enqueue_new(self, kind: JobKind, team_id: str, payload: dict) -> Job:
        """Queue a job of its own (never reused: every event is delivered)."""
        ...


@dataclass(kw_only=True, eq=False, repr=False)
class WebhookEvents:
    receivers: Sequence[WebhookSettings]
    queue: DeliveryQueue
    clock: Clock

    async def emit(self, event: str, team_id: str | None, data: dict[str, Any]) -> int:
        """Queue the event for each receiver that wants it; how many deliveries were queued."""
        queued = 0
        body = {
            "id": secrets.token_hex(12),
            "type": event,
            "created_ms": self.clock.now_ms(),
            "team_id": team_id,
            "data": data,
        }
        for receiver in self.receivers:
            if event in receiver.events:
                # Bridge-wide jobs (team ''): a delivery outlives the team it is about.
                await self.queue.enqueue_new(JobKind.WEBHOOK, "", {"url": receiver.url, "event": body})
                queued += 1
        return queued

    async def audit_recorded(self, entry: AuditEntry) -> None:
        """The ``AuditLog`` hook: every entry becomes an ``audit`` event."""
        await self.emit(
            "audit",
            entry.team_id,
            {
                "ts": entry.ts,
                "actor": entry.actor,
                "action": entry.action,
                "target": entry.target,
                "detail": entry.detail,
            },
        )
