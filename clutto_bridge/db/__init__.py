"""The bridge database: models with their queries, and versioned upgrades (SQLite and PostgreSQL)."""

from __future__ import annotations

from mautrix.util.async_db import Database

from clutto_bridge.config import AppserviceSettings
from clutto_bridge.db.upgrade import upgrade_table


def create_database(settings: AppserviceSettings) -> Database:
    """The bridge's database, not yet started; ``start()`` applies pending upgrades."""
    return Database.create(
        settings.database,
        upgrade_table=upgrade_table,
        db_args=dict(settings.database_opts),
    )
