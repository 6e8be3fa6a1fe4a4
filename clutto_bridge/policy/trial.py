"""The trial lifecycle: when the owner is warned and when a team still on trial is purged."""

from __future__ import annotations

from clutto_bridge.durations import format_duration

TRIAL = "trial"
PAID = "paid"
PLANS = (TRIAL, PAID)


def due_warnings(now_ms: int, plan: str, purge_after_ms: int, warnings: tuple[int, ...], sent: set[str]) -> list[str]:
    """Warnings (named like "7d") whose moment has come and that were not sent yet.

    After a long downtime several can be due at once; the caller sends one message.
    """
    if plan != TRIAL or now_ms >= purge_after_ms:
        return []
    return [
        format_duration(w) for w in warnings if now_ms >= purge_after_ms - w * 1000 and format_duration(w) not in sent
    ]


def purge_due(now_ms: int, plan: str, purge_after_ms: int) -> bool:
    return plan == TRIAL and now_ms >= purge_after_ms
