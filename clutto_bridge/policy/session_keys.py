"""Keys follow retention: which of the bot's Megolm sessions it may share.

A Megolm session decrypts every message sent with it, from the first index it was shared at.
Team rooms rotate sessions at most weekly and never beyond the team's retention
(``policy.encryption``), so a session's messages expire close together; the spans are those of
the messages the timeline index saw (``db.megolm_sessions.SessionSpan``). A sweep deletes a
session whose newest message expired (``db.megolm_sessions.MegolmSessions.forget_expired``).
"""

from __future__ import annotations

from typing import Protocol


class Span(Protocol):
    @property
    def oldest_ts(self) -> int: ...
    @property
    def newest_ts(self) -> int: ...


def may_share(span: Span | None, cutoff_ms: int) -> bool:
    """A key goes out only for a session the index knows and whose every message is inside the
    window: shared, it would decrypt its older messages too. An unknown session is refused (its
    messages may be anything); a session straddling the cutoff is refused whole, since the bot
    cannot hand out only its later part."""
    return span is not None and span.oldest_ts >= cutoff_ms
