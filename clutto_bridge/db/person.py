"""What the bridge keeps about a person outside any team, and forgetting it when they are erased."""

from __future__ import annotations

from mautrix.util.async_db import Database

from clutto_bridge.db.connection import transaction

# Rows about the person themselves. Consent records and the history of their choices
# (policy_consent, privacy_choice, cookie_choice) stay: they are the evidence of what was
# agreed, and hold no more than a user ID, a version or choice, and a time. Their portal
# sign-in links and sessions go, so an erased account cannot use the portal.
PERSONAL_TABLES = (
    ("profile", "user_id"),
    ("contact", "owner"),
    ("contact_permission", "user_id"),
    ("marketing_choice", "user_id"),
    ("policy_notice", "user_id"),
    ("management_room", "user_id"),
    ("account", "user_id"),
    ("portal_link", "user_id"),
    ("portal_session", "user_id"),
)


class PersonStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def forget(self, user_id: str) -> None:
        async with transaction(self.db) as conn:
            for table, column in PERSONAL_TABLES:
                await conn.execute(f"DELETE FROM {table} WHERE {column}=$1", user_id)
