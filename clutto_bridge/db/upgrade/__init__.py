"""Schema history: one file per version, applied in order by mautrix's UpgradeTable."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import overload
from weakref import WeakKeyDictionary

from mautrix.util.async_db import Database, Scheme, UpgradeTable
from mautrix.util.async_db.upgrade import Upgrade, UpgradeWithoutScheme

from clutto_bridge.crypto import FieldCipher

# The keyset's cipher of the database being upgraded, for upgrades that encrypt existing
# rows (v12). Set by ``KeyedUpgradeTable.upgrade`` for the duration of that database's
# upgrade only (a context variable: two bridges in one process never see each other's).
_upgrading_with: ContextVar[FieldCipher | None] = ContextVar("clutto_upgrade_cipher", default=None)
# The cipher each database was opened with (``create_database``), while it is open.
_ciphers: WeakKeyDictionary[Database, FieldCipher] = WeakKeyDictionary()


def open_with(db: Database, cipher: FieldCipher | None) -> None:
    """Upgrades of ``db`` that encrypt rows use ``cipher`` (none: they find no cipher)."""
    if cipher is not None:
        _ciphers[db] = cipher


def cipher_of(db: Database) -> FieldCipher | None:
    """The cipher ``db`` was opened with."""
    return _ciphers.get(db)


class KeyedUpgradeTable(UpgradeTable):
    # mautrix types ``register`` as returning either the upgrade or the decorator; these say
    # which, so a ``@upgrade_table.register(...)`` migration keeps its type.
    @overload
    def register(
        self,
        _outer_fn: None = None,
        *,
        index: int = -1,
        description: str = "",
        transaction: bool = True,
        upgrades_to: int | Upgrade | None = None,
    ) -> Callable[[Upgrade | UpgradeWithoutScheme], Upgrade]: ...

    @overload
    def register(
        self,
        _outer_fn: Upgrade | UpgradeWithoutScheme,
        *,
        index: int = -1,
        description: str = "",
        transaction: bool = True,
        upgrades_to: int | Upgrade | None = None,
    ) -> Upgrade: ...

    @overload
    def register(
        self,
        _outer_fn: Upgrade | UpgradeWithoutScheme | None = None,
        *,
        index: int = -1,
        description: str = "",
        transaction: bool = True,
        upgrades_to: int | Upgrade | None = None,
    ) -> Upgrade | Callable[[Upgrade | UpgradeWithoutScheme], Upgrade]: ...

    def register(
        self,
        _outer_fn: Upgrade | UpgradeWithoutScheme | None = None,
        *,
        index: int = -1,
        description: str = "",
        transaction: bool = True,
        upgrades_to: int | Upgrade | None = None,
    ) -> Upgrade | Callable[[Upgrade | UpgradeWithoutScheme], Upgrade]:
        return super().register(
            _outer_fn, index=index, description=description, transaction=transaction, upgrades_to=upgrades_to
        )

    async def upgrade(self, db: Database) -> None:
        token = _upgrading_with.set(cipher_of(db))
        try:
            await super().upgrade(db)
        finally:
            _upgrading_with.reset(token)


def upgrade_cipher() -> FieldCipher | None:
    """The cipher of the database being upgraded; None when it was opened without a keyset."""
    return _upgrading_with.get()


upgrade_table = KeyedUpgradeTable(version_table_name="clutto_version", database_name="clutto-bridge")


def serial_key(scheme: Scheme) -> str:
    """An auto-numbered primary key column on either database."""
    return "BIGSERIAL PRIMARY KEY" if scheme in (Scheme.POSTGRES, Scheme.COCKROACH) else "INTEGER PRIMARY KEY"


# The migrations, in order (v01 to v12 are numbered by it), one line to add for a new one.
# isort: off
from clutto_bridge.db.upgrade import (  # noqa: E402,F401
    v01_initial,
    v02_member_control,
    v03_retention,
    v04_notices,
    v05_people,
    v06_names,
)
from clutto_bridge.db.upgrade import v07_conversation, v08_inbox, v09_email  # noqa: E402,F401
from clutto_bridge.db.upgrade import v10_access_records, v11_portal, v12_encryption  # noqa: E402,F401

# v13 is an empty slot (no-op); v14 onwards register with their own numbers.
from clutto_bridge.db.upgrade import v14_timeline, v15_audit_chain, v16_timeline_check  # noqa: E402,F401
from clutto_bridge.db.upgrade import v17_timeline_while_filling, v18_no_transaction_log  # noqa: E402,F401
from clutto_bridge.db.upgrade import v19_room_creation, v20_crypto_pickle_key  # noqa: E402,F401
from clutto_bridge.db.upgrade import v21_timeline_sessions  # noqa: E402,F401
from clutto_bridge.db.upgrade import v22_scim  # noqa: E402,F401
from clutto_bridge.db.upgrade import v23_export_numbers, v24_scim_groups  # noqa: E402,F401
# isort: on
