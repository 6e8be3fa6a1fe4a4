"""End-to-end encryption of team rooms (P12, Customer Data on the homeserver): pure decisions.

``policy.encryption`` says how far the bridge goes:

- ``off``: rooms are created without encryption (P12 is weakened in the promises report);
- ``default``: team rooms, the email room and the chat with the bot are created encrypted
  (Megolm); rooms that exist stay as they are until an owner asks (``rooms encrypt``);
- ``require``: as ``default``, and existing team rooms are encrypted too (after the owner was
  told: it cannot be undone), and the homeserver refuses a plaintext message in an
  encrypted team room before it stores it.

Nobody but the bot may change a team room's ``m.room.encryption``: turning it on in a room
the bot cannot yet read, or changing its rotation, is the team's setting, not a member's.
"""

from __future__ import annotations

from typing import Any

from clutto_bridge.policy.gate import FORBIDDEN, Refusal, RoomFacts

MODES = ("off", "default", "require")
MEGOLM = "m.megolm.v1.aes-sha2"
ENCRYPTION_EVENT = "m.room.encryption"
ENCRYPTED_EVENT = "m.room.encrypted"
# A Megolm session is replaced at least weekly and every 100 messages, and never outlives
# the team's retention: deleting the sessions of expired messages then removes no key that
# still decrypts a kept one.
MAX_ROTATION_MS = 7 * 86_400_000
ROTATION_MESSAGES = 100


def room_encryption(mode: str, retention_ms: int) -> dict[str, Any] | None:
    """The ``m.room.encryption`` content a new team room starts with; None when ``off``."""
    if mode == "off":
        return None
    return {
        "algorithm": MEGOLM,
        "rotation_period_ms": max(1, min(retention_ms, MAX_ROTATION_MS)),
        "rotation_period_msgs": ROTATION_MESSAGES,
    }


def encrypts_existing_rooms(mode: str) -> bool:
    """Whether the bridge turns encryption on in team rooms that were created without it."""
    return mode == "require"


def may_change_encryption(facts: RoomFacts | None, sender: str, bridge_bot: str) -> Refusal | None:
    """Only the bot sets a team room's encryption."""
    if facts is None or not facts.active or sender == bridge_bot:
        return None
    return Refusal(
        FORBIDDEN,
        f"Encryption in the rooms of the team {facts.team_name} is set by the team's policy. "
        "An owner can turn it on with `!clutto rooms encrypt`.",
        "encryption_change",
    )


def may_send_plaintext(
    facts: RoomFacts | None, mode: str, room_encrypted: bool, event_type: str, sender: str, bridge_bot: str
) -> Refusal | None:
    """Under ``require``, an encrypted team room holds ciphertext only: a plaintext message
    (a client that does not encrypt, a script) is refused before the homeserver stores it."""
    if facts is None or not facts.active or mode != "require" or not room_encrypted:
        return None
    if event_type != "m.room.message" or sender == bridge_bot:
        return None
    return Refusal(
        FORBIDDEN,
        f"The rooms of the team {facts.team_name} are end-to-end encrypted, and this message "
        "was not. Use a client that encrypts (Element does).",
        "plaintext_message",
    )
