"""The bridge database: one store per table group (the only place with SQL), and versioned
upgrades (SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from mautrix.util.async_db import Database

from clutto_bridge.db.account import AccountStore
from clutto_bridge.db.analytics import AnalyticsStore
from clutto_bridge.db.audit import AuditStore
from clutto_bridge.db.bot import ManagementRooms, TeamWelcomes, TransactionLog
from clutto_bridge.db.consent import ConsentStore
from clutto_bridge.db.contacts import ContactStore
from clutto_bridge.db.email import EmailStore
from clutto_bridge.db.holds import HoldStore
from clutto_bridge.db.inbox import Inbox
from clutto_bridge.db.integrations import IntegrationStore
from clutto_bridge.db.job import JobStore
from clutto_bridge.db.member import MemberStore
from clutto_bridge.db.notices import NoticeStore
from clutto_bridge.db.person import PersonStore
from clutto_bridge.db.profile import ProfileStore
from clutto_bridge.db.references import ReferenceStore
from clutto_bridge.db.team import RoomStore, TeamStore
from clutto_bridge.db.timeline import TimelineIndex
from clutto_bridge.db.upgrade import upgrade_table


def create_database(url: str, pool: Mapping[str, int] | None = None) -> Database:
    """The bridge's database, not yet started; ``start()`` applies pending upgrades."""
    return Database.create(url, upgrade_table=upgrade_table, db_args=dict(pool or {}))


@dataclass
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
    transactions: TransactionLog
    welcomes: TeamWelcomes
    inbox: Inbox
    analytics: AnalyticsStore
    email: EmailStore
    timeline: TimelineIndex

    @classmethod
    def over(cls, db: Database) -> Stores:
        return cls(
            TeamStore(db), RoomStore(db), MemberStore(db), AccountStore(db), ProfileStore(db), ConsentStore(db),
            ContactStore(db), HoldStore(db), ReferenceStore(db), NoticeStore(db), IntegrationStore(db),
            AuditStore(db), JobStore(db), PersonStore(db), ManagementRooms(db), TransactionLog(db),
            TeamWelcomes(db), Inbox(db), AnalyticsStore(db), EmailStore(db), TimelineIndex(db),
        )
