"""Wiring: database, appservice, team service, commands and the provisioning API."""

from __future__ import annotations

import asyncio
import logging

from mautrix.appservice.state_store.asyncpg import PgASStateStore
from mautrix.errors import MatrixRequestError
from mautrix.util.async_db import Database

from clutto_bridge.clock import Clock, SystemClock
from clutto_bridge.context import Services
from clutto_bridge.config import Settings
from clutto_bridge.db import create_database
from clutto_bridge.db.audit import AuditLog
from clutto_bridge.db.bot import ManagementRooms, TransactionLog
from clutto_bridge.db.job import JobStore
from clutto_bridge.jobs.export import EXPORT, TeamExport
from clutto_bridge.jobs.retention_sweep import RetentionSweep
from clutto_bridge.jobs.runner import JobRunner
from clutto_bridge.jobs.schedule import schedule_sweeps
from clutto_bridge.matrix.admin import SynapseAdmin
from clutto_bridge.matrix.appservice import ClutttoAppService
from clutto_bridge.matrix.events import EventDispatcher
from clutto_bridge.teams.consent import ConsentService
from clutto_bridge.teams.contacts import ContactService
from clutto_bridge.teams.integrations import IntegrationService
from clutto_bridge.teams.members import MemberService
from clutto_bridge.teams.mydata import MyData
from clutto_bridge.teams.notices import NoticeService
from clutto_bridge.teams.onboarding import Onboarding
from clutto_bridge.teams.profiles import ProfileService
from clutto_bridge.teams.rooms import RoomService
from clutto_bridge.teams.lifecycle import PURGE, TrialLifecycle
from clutto_bridge.teams.retention import SWEEP, RetentionService
from clutto_bridge.teams.service import TeamService
from clutto_bridge.teams.settings import TeamSettings
from clutto_bridge.web.provisioning import PREFIX, ProvisioningAPI

log = logging.getLogger("clutto")


class Bridge:
    """One running bridge. Everything it needs is passed in; nothing is global."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.db: Database = create_database(settings.appservice)
        self.state_db = Database.create(
            settings.appservice.database, upgrade_table=PgASStateStore.upgrade_table
        )
        a = settings.appservice
        self.appservice = ClutttoAppService(
            server=settings.homeserver.address,
            domain=settings.homeserver.domain,
            as_token=a.as_token,
            hs_token=a.hs_token,
            bot_localpart=a.bot_username,
            id=a.id,
            verify_ssl=settings.homeserver.verify_ssl,
            state_store=PgASStateStore(self.state_db),
            transactions=TransactionLog(self.db),
            clock=self.clock,
            default_http_retry_count=3,
            log=logging.getLogger("clutto.appservice"),
        )
        self.teams = TeamService(self.db, self.appservice, settings, self.clock)
        self.admin = SynapseAdmin(lambda: self.appservice.intent)
        self.audit = AuditLog(self.db)
        self.consent = ConsentService(self.db, settings, self.clock)
        self.members = MemberService(self.teams, self.admin, self.audit, self.consent)
        self.rooms = RoomService(self.members)
        self.integrations = IntegrationService(self.members)
        self.team_settings = TeamSettings(self.members)
        self.runner = JobRunner(JobStore(self.db), settings.jobs)
        self.retention = RetentionService(self.members, self.runner)
        self.runner.register(SWEEP, RetentionSweep(self.retention))
        self.export = TeamExport(self.members)
        self.runner.register(EXPORT, self.export)
        self.management_rooms = ManagementRooms(self.db)
        self.notices = NoticeService(self.members, self.management_rooms)
        self.lifecycle = TrialLifecycle(self.retention, self.team_settings, self.runner, self.notices)
        self.runner.register(PURGE, self.lifecycle.purge)
        self.profiles = ProfileService(self.members, self.admin, self.notices)
        self.onboarding = Onboarding(self.members, self.consent, self.profiles, self.notices)
        self.contacts = ContactService(self.consent, self.admin)
        self.mydata = MyData(self.members, self.profiles, self.consent, self.contacts, self.notices)
        ctx = Services(
            teams=self.teams,
            members=self.members,
            rooms=self.rooms,
            integrations=self.integrations,
            team_settings=self.team_settings,
            retention=self.retention,
            lifecycle=self.lifecycle,
            export=self.export,
            notices=self.notices,
            consent=self.consent,
            profiles=self.profiles,
            onboarding=self.onboarding,
            contacts=self.contacts,
            mydata=self.mydata,
            management_rooms=self.management_rooms,
            settings=settings,
            bot=lambda: self.appservice.intent,
        )
        self.events = EventDispatcher(self.appservice, ctx)
        self.appservice.matrix_event_handler(self.events.handle)
        self._scheduler: asyncio.Task | None = None
        if settings.provisioning.enabled:
            api = ProvisioningAPI(ctx, settings.provisioning.shared_secret)
            self.appservice.app.add_subapp(PREFIX, api.app)

    async def start(self) -> None:
        a = self.settings.appservice
        await self.db.start()
        self.state_db.override_pool(self.db)  # shares the pool, which exists only once started
        await self.state_db.start()
        await TransactionLog(self.db).forget_before(self.clock.now_ms() - a.transaction_memory * 1000)
        await self.appservice.start(a.hostname, a.port)
        log.info("Listening on %s:%d", a.hostname, a.port)
        bot = self.appservice.intent
        await bot.ensure_registered()
        try:
            await bot.set_displayname(a.bot_displayname)
        except MatrixRequestError as e:
            log.warning("Could not set the bot's display name: %s", e)
        self.retention.admin_available = await self.admin.is_admin()
        if not self.retention.admin_available:
            log.warning(
                "The bot %s is not a homeserver admin. RETENTION DEGRADES TO REDACTION ONLY: old events are "
                "redacted but stay in the homeserver database, and their media stays. Creating and deactivating "
                "accounts and deleting teams are refused. Make it one: PUT /_synapse/admin/v2/users/%s "
                "{\"admin\": true}",
                bot.mxid, bot.mxid,
            )
        log.info("Profiles are published as %s", await self.profiles.detect())
        await self.profiles.drop_disallowed()
        log.info("Privacy policy version %s, consent mode %s", self.settings.consent.version, self.settings.consent.mode)
        finished = await self.teams.finish_interrupted()
        if finished:
            log.info("Finished creating %d team(s) interrupted by the last stop", finished)
        deleted = await self.team_settings.finish_interrupted()
        if deleted:
            log.info("Finished deleting %d team(s) interrupted by the last stop", deleted)
        self.runner.start()
        self._scheduler = asyncio.create_task(self._schedule_forever(), name="clutto-scheduler")
        self.appservice.ready = True
        log.info("Bridge ready as %s", self.appservice.bot_mxid)

    async def _schedule_forever(self) -> None:
        """Queue each team's periodic sweep; the schedule lives in the job table, so it survives restarts."""
        while True:
            try:
                await self.onboarding.announce()
                await schedule_sweeps(self.retention)
                await self.lifecycle.check()
                await self.onboarding.remind_due()
            except Exception:
                log.exception("Scheduled work failed")
            await asyncio.sleep(min(self.settings.retention.sweep_interval, 3600))

    async def stop(self, grace: float = 10.0) -> None:
        self.appservice.ready = False
        if self._scheduler:
            self._scheduler.cancel()
        await self.runner.stop()
        await self.events.drain(grace)
        await self.appservice.stop()
        await self.db.stop()
        log.info("Bridge stopped")
