"""The bridge database: one store per table group (the only place with SQL), and versioned
upgrades (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mautrix.util.async_db import Database

from clutto_bridge.crypto import FieldCipher
from clutto_bridge.db.access import AccessStore
from clutto_bridge.db.account import AccountStore
from clutto_bridge.db.analytics import AnalyticsStore
from clutto_bridge.db.audit import AuditStore
from clutto_bridge.db.bot import ManagementRooms, TeamWelcomes
from clutto_bridge.db.consent import ConsentStore
from clutto_bridge.db.contacts import ContactStore
from clutto_bridge.db.crypto_pickles import CryptoPickles
from clutto_bridge.db.email import EmailStore
from clutto_bridge.db.encrypted import EncryptedColumns
from clutto_bridge.db.gate import GateStore
from clutto_bridge.db.holds import HoldStore
from clutto_bridge.db.inbox import Inbox
from clutto_bridge.db.integrations import IntegrationStore
from clutto_bridge.db.job import JobStore
from clutto_bridge.db.member import MemberStore
from clutto_bridge.db.notices import NoticeStore
from clutto_bridge.db.person import PersonStore
from clutto_bridge.db.portal import PortalStore
from clutto_bridge.db.profile import ProfileStore
from clutto_bridge.db.reads import create_sqlite_with_readers, sqlite_file_path
from clutto_bridge.db.references import ReferenceStore
from clutto_bridge.db.scim import ScimStore
from clutto_bridge.db.team import RoomStore, TeamStore
from clutto_bridge.db.timeline import TimelineIndex
from clutto_bridge.db.upgrade import open_with, upgrade_table


def create_database(
    url: str, pool: Mapping[str, int] | None = None, cipher: FieldCipher | None = None, *, readers: int = 0
) -> Database:
    """The bridge's database, not yet started; ``start()`` applies pending upgrades (with
    ``cipher``, those that encrypt rows an older version kept in plaintext). With ``readers``,
    an SQLite file also gets that many read-only connections for plain SELECTs (``db.reads``);
    with none too, an SQLite file's database waits for its connections' threads on stop."""
    if sqlite_file_path(url) is not None:
        db = create_sqlite_with_readers(url, readers, pool or {}, upgrade_table=upgrade_table)
    else:
        db = Database.create(url, upgrade_table=upgrade_table, db_args=dict(pool or {}))
    open_with(db, cipher)  # read by KeyedUpgradeTable while this database is upgraded
    return db


@dataclass(kw_only=True)
class Stores:
    """Every store over one database, built once at start-up and handed to the services."""

    teams: TeamStore
    rooms: RoomStore
    members: MemberStore
    accounts: AccountStore
    profiles: ProfileStore
    consent: ConsentStore
    contacts: ContactStore
    holds: HoldStore
    references: ReferenceStore
    notices: NoticeStore
    integrations: IntegrationStore
    audit: AuditStore
    jobs: JobStore
    persons: PersonStore
    management_rooms: ManagementRooms
    welcomes: TeamWelcomes
    inbox: Inbox
    analytics: AnalyticsStore
    email: EmailStore
    access: AccessStore
    portal: PortalStore
    gate: GateStore
    encrypted: EncryptedColumns
    timeline: TimelineIndex
    crypto_pickles: CryptoPickles
    scim: ScimStore

    @classmethod
    def over(cls, db: Database, cipher: FieldCipher) -> Stores:
        """The stores that hold personal data encrypt and decrypt with ``cipher``: the services
        above see plaintext only, the database ciphertext only."""
        return cls(
            teams=TeamStore(db),
            rooms=RoomStore(db),
            members=MemberStore(db),
            accounts=AccountStore(db, cipher),
            profiles=ProfileStore(db, cipher),
            consent=ConsentStore(db),
            contacts=ContactStore(db, cipher),
            holds=HoldStore(db),
            references=ReferenceStore(db),
            notices=NoticeStore(db),
            integrations=IntegrationStore(db),
            audit=AuditStore(db),
            jobs=JobStore(db),
            persons=PersonStore(db),
            management_rooms=ManagementRooms(db),
            welcomes=TeamWelcomes(db),
            inbox=Inbox(db, cipher),
            analytics=AnalyticsStore(db),
            email=EmailStore(db),
            access=AccessStore(db),
            portal=PortalStore(db),
            gate=GateStore(db),
            encrypted=EncryptedColumns(db, cipher),
            timeline=TimelineIndex(db),
            crypto_pickles=CryptoPickles(db),
            scim=ScimStore(db, cipher),
        )
