"""Schema history: one file per version, applied in order by mautrix's UpgradeTable."""

from mautrix.util.async_db import Scheme, UpgradeTable

upgrade_table = UpgradeTable(version_table_name="clutto_version", database_name="clutto-bridge")


def serial_key(scheme: Scheme) -> str:
    """An auto-numbered primary key column on either database."""
    return "BIGSERIAL PRIMARY KEY" if scheme in (Scheme.POSTGRES, Scheme.COCKROACH) else "INTEGER PRIMARY KEY"

from clutto_bridge.db.upgrade import (  # noqa: E402,F401
    v01_initial, v02_member_control, v03_retention, v04_notices, v05_people, v06_names,
)
from clutto_bridge.db.upgrade import v07_conversation, v08_inbox, v09_email, v14_timeline  # noqa: E402,F401
