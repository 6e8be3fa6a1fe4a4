"""The "My data" page: the member's own data (``MyData.collect``, the same dict as the JSON
download) as a person reads it, in sections with dates instead of epoch milliseconds."""

from __future__ import annotations

from typing import Any

from clutto_bridge.clock import utc_minute

CHOICES = {
    "policy_consent": "Privacy policy",
    "contact_import": "Contact import",
    "marketing": "Product news",
    "cookies": "Portal cookies",
}
VALUES = {
    "opted_in": "yes, send me product news",
    "opted_out": "no product news",
    "allowed": "allowed",
    "revoked": "revoked (imported contacts deleted)",
    "necessary_only": "necessary cookies only",
}
MEMBERSHIP = {
    "invited": "invited, not joined yet",
    "joined": "joined",
    "declined": "declined the invite",
    "left": "left",
    "removed": "removed",
}


def when(ms: int | None) -> str:
    """A time of the bridge's records (ms since the epoch) as the chat writes it."""
    if ms is None:
        return "unknown"
    return utc_minute(ms)


def profile_rows(profile: dict[str, str | None]) -> list[tuple[str, str | None]]:
    return [(field.replace("_", " ").capitalize(), value) for field, value in profile.items()]


def choice_rows(choices: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(when, what, choice) of every recorded choice, newest first."""
    rows = []
    for c in reversed(choices):
        what = CHOICES.get(c["choice"], c["choice"].replace("_", " "))
        value = str(c["value"])
        if c["choice"] == "policy_consent":
            value = f"accepted version {value}"
        elif c["choice"] == "cookies" and value not in VALUES:
            value = f"{value.replace(',', ', ')} cookies"
        rows.append((when(c["ts"]), what, VALUES.get(value, value.replace("_", " "))))
    return rows


def page(data: dict[str, Any]) -> dict[str, Any]:
    """The template's context: each section ready to show."""
    return {
        "user_id": data["user_id"],
        "profile": profile_rows(data["profile"]),
        "account": data["account"]
        and {"email": data["account"]["email"], "created": when(data["account"]["created_at"])},
        "teams": [
            {
                "name": t["team"],
                "role": t["role"],
                "membership": MEMBERSHIP.get(t["membership"], t["membership"]),
                "since": when(t["added_at"]),
            }
            for t in data["teams"]
        ],
        "accepted": [{"version": c["version"], "on": when(c["accepted_at"])} for c in data["policy_consent"]],
        "consent_current": data["consent_current"],
        "marketing": data["marketing_opted_in"],
        "contact_import": data["contact_import_allowed"],
        "contacts": [
            {
                "name": c.get("name") or "",
                "emails": ", ".join(c.get("emails") or []),
                "matrix_ids": ", ".join(c.get("matrix_ids") or []),
                "imported": when(c.get("imported_at")),
            }
            for c in data["contacts"]
        ],
        "choices": choice_rows(data["choices"]),
        "generated_by": data["generated_by"],
    }
