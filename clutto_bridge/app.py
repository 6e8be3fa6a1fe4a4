"""Wiring: database and stores, the homeserver client, the domain services, jobs, commands
and the provisioning API. Each service gets exactly what it uses."""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import asynccontextmanager
from typing import AsyncIterator

from mautrix.appservice.state_store.asyncpg import PgASStateStore
from mautrix.util.async_db import Database

from clutto_bridge.clock import Clock, SystemClock
from clutto_bridge.config import ConfigError, Settings, sqlite_file
from clutto_bridge.context import Services
from clutto_bridge.db import Stores, create_database
from clutto_bridge.db.job import JobKind
from clutto_bridge.commands import registry
from clutto_bridge.events import EventDispatcher
from clutto_bridge.jobs.export import TeamExport
from clutto_bridge.jobs.retention_sweep import RetentionSweep
from clutto_bridge.jobs.runner import JobRunner
from clutto_bridge.jobs.schedule import schedule_sweeps
from clutto_bridge.jobs.team_purge import TeamPurge
from clutto_bridge.matrix.admin import SynapseAdmin
from clutto_bridge.matrix.errors import MatrixConnectionError, MatrixRequestError
from clutto_bridge.matrix.appservice import CluttoAppService
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.metrics import Metrics
from clutto_bridge.teams.audit import AuditLog
from clutto_bridge.teams.consent import ConsentService
from clutto_bridge.teams.contacts import ContactService
from clutto_bridge.teams.details import TeamDetails
from clutto_bridge.teams.email import EmailService
from clutto_bridge.teams.integrations import IntegrationService
from clutto_bridge.teams.lifecycle import TrialLifecycle
from clutto_bridge.teams.members import MemberService
from clutto_bridge.teams.mydata import MyData
from clutto_bridge.teams.notices import NoticeService
from clutto_bridge.teams.onboarding import Onboarding
from clutto_bridge.teams.profiles import ProfileService
from clutto_bridge.teams.retention import RetentionService
from clutto_bridge.teams.rooms import RoomService
from clutto_bridge.teams.service import TeamService
from clutto_bridge.teams.usage import UsageService
from clutto_bridge.web.metrics import MetricsEndpoint
from clutto_bridge.smtp import SmtpListener
from clutto_bridge.web.provisioning import PREFIX, ProvisioningAPI

log = logging.getLogger("clutto")


class Bridge:
    """One running bridge. Everything it needs is passed in; nothing is global."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = s = settings
        self.clock = clock = clock or SystemClock()
        a = s.appservice
        self.db: Database = create_database(a.database, a.database_opts)
        self.state_db = Database.create(a.database, upgrade_table=PgASStateStore.upgrade_table)
        self.stores = db = Stores.over(self.db)
        self.appservice = CluttoAppService(
            server=s.homeserver.address, domain=s.homeserver.domain, as_token=a.as_token, hs_token=a.hs_token,
            bot_localpart=a.bot_username, id=a.id, verify_ssl=s.homeserver.verify_ssl,
            state_store=PgASStateStore(self.state_db), inbox=db.inbox, now_ms=clock.now_ms,
            default_http_retry_count=3, log=logging.getLogger("clutto.appservice"),
        )
        bot = lambda: self.appservice.intent  # noqa: E731 - the intent exists once the appservice does
        self.admin = admin = SynapseAdmin(bot)
        hs = Homeserver(bot, admin, s.homeserver.address)
        # This bridge's own registry: counts of several bridges in one process never mix.
        self.metrics = metrics = Metrics()
        metrics.allow("command", [*registry.commands, "profile photo", "contacts import"])
        self.audit = audit = AuditLog(db.audit, clock, metrics)
        self.runner = runner = JobRunner(db.jobs, s.jobs, clock, metrics)
        self.management_rooms = db.management_rooms

        self.teams = teams = TeamService(db.teams, db.rooms, db.members, hs, s, clock)
        self.consent = consent = ConsentService(db.consent, s, clock)
        self.members = members = MemberService(
            teams, db.members, db.teams, db.accounts, hs, admin, audit, consent, s, clock
        )
        rooms = RoomService(members, db.rooms, hs, audit, s.bridge.room_version, clock)
        integrations = IntegrationService(db.integrations, teams, db.members, hs, audit, s.integrations)
        self.details = details = TeamDetails(
            teams, db.teams, db.rooms, db.jobs, hs, admin, audit, s.bridge.team_name_max_length
        )
        self.retention = retention = RetentionService(
            teams, db.teams, db.rooms, db.holds, db.references, db.jobs, runner, hs, audit, clock, db.timeline
        )
        self.notices = notices = NoticeService(
            db.notices, db.management_rooms, teams, members, hs, s.marketing_default, clock, consent
        )
        self.lifecycle = lifecycle = TrialLifecycle(
            teams, db.teams, retention, db.jobs, runner, notices, audit, s.trial, str(s.export_folder), clock
        )
        self.profiles = profiles = ProfileService(
            db.profiles, db.members, teams, hs, admin, notices, audit, s.profile, s.homeserver.domain, clock
        )
        self.onboarding = onboarding = Onboarding(
            members, db.members, db.profiles, consent, profiles, notices, s, clock, db.welcomes
        )
        contacts = ContactService(db.contacts, consent, admin, s.homeserver.domain, clock, hs)
        mydata = MyData(db.members, db.accounts, profiles, consent, contacts, notices)
        usage = UsageService(db.analytics, s.analytics.k)
        self.email = email = EmailService(db.email, db.teams, members, db.rooms, hs, audit, s.email, clock)
        self.smtp = SmtpListener(email, s.email) if s.email.enabled else None

        runner.register(JobKind.SWEEP, RetentionSweep(
            retention, db.teams, db.references, hs, admin, audit, s.retention, s.jobs.homeserver_rate, db.timeline
        ))
        runner.register(JobKind.EXPORT, TeamExport(
            db.teams, db.rooms, db.members, hs, audit, lifecycle, s.jobs.homeserver_rate, clock
        ))
        runner.register(JobKind.PURGE, TeamPurge(
            db.teams, db.rooms, db.members, db.references, db.persons, retention, details, admin
        ))

        ctx = Services(
            teams=teams, members=members, rooms=rooms, integrations=integrations, details=details,
            retention=retention, lifecycle=lifecycle, notices=notices, consent=consent, profiles=profiles,
            onboarding=onboarding, contacts=contacts, mydata=mydata, usage=usage, email=email, homeserver=hs, settings=s,
        )
        self.homeserver = hs
        self.events = EventDispatcher(ctx, metrics)
        self.appservice.matrix_event_handler(self.events.handle)
        self._scheduler: asyncio.Task | None = None
        if s.provisioning.enabled:
            api = ProvisioningAPI(ctx, s.provisioning.shared_secret, metrics)
            self.appservice.app.add_subapp(PREFIX, api.app)
        if s.analytics.metrics_enabled:
            MetricsEndpoint(usage, metrics, s.analytics.metrics_secret).register(self.appservice.app)

    async def start(self) -> None:
        a = self.settings.appservice
        await self._open_database()
        remembered_since = self.clock.now_ms() - a.transaction_memory * 1000
        await self.stores.transactions.forget_before(remembered_since)
        await self.stores.inbox.forget_before(remembered_since)
        # Events sent while the bridge was down may reach it late or not at all: the next
        # sweep of each room reads what the stream may have missed into the timeline index.
        await self.stores.timeline.mark_all_for_fill()
        # Queued now, ahead of anything new in the same rooms; run once the bridge is ready.
        unfinished = await self.appservice.resume_inbox()
        if unfinished:
            log.info("Handling %d event(s) left unfinished by the last stop", unfinished)
        async with _named("appservice.port", f"cannot listen on {a.hostname}:{a.port}"):
            await self.appservice.start(a.hostname, a.port)
        log.info("Listening on %s:%d", a.hostname, a.port)
        async with _named("homeserver.address", f"cannot use the homeserver at {self.settings.homeserver.address}"):
            await self.homeserver.ensure_bot(a.bot_displayname)
        self.retention.admin_available = await self.admin.is_admin()
        if not self.retention.admin_available:
            bot = self.homeserver.bot_mxid
            log.warning(
                "The bot %s is not a homeserver admin. RETENTION DEGRADES TO REDACTION ONLY: old events are "
                "redacted but stay in the homeserver database, and their media stays. Creating and deactivating "
                "accounts and deleting teams are refused. Make it one: PUT /_synapse/admin/v2/users/%s "
                "{\"admin\": true}",
                bot, bot,
            )
        log.info("Profiles are published as %s", await self.profiles.detect())
        await self.profiles.drop_disallowed()
        log.info("Privacy policy version %s, consent mode %s", self.settings.consent.version, self.settings.consent.mode)
        finished = await self.teams.finish_interrupted()
        if finished:
            log.info("Finished creating %d team(s) interrupted by the last stop", finished)
        deleted = await self.details.finish_interrupted()
        if deleted:
            log.info("Finished deleting %d team(s) interrupted by the last stop", deleted)
        await self.runner.take_back_from_dead_local_workers()
        self.runner.start()
        self._scheduler = asyncio.create_task(self._schedule_forever(), name="clutto-scheduler")
        self.appservice.open_inbox()
        self.appservice.ready = True
        if self.smtp:
            e = self.settings.email
            async with _named("email.port", f"cannot listen for mail on {e.hostname}:{e.port}"):
                await self.smtp.start()
        log.info("Bridge ready as %s", self.appservice.bot_mxid)

    async def _open_database(self) -> None:
        a = self.settings.appservice
        async with _named("appservice.database", "cannot open the database"):
            await self.db.start()
            self.state_db.override_pool(self.db)  # shares the pool, which exists only once started
            await self.state_db.start()
        _owner_only(a.database)

    async def start_worker(self) -> None:
        """Run only the job runner (``clutto-bridge worker``): sweeps, exports and purges taken
        from the queue the main process and other workers share (PostgreSQL, ``FOR UPDATE SKIP
        LOCKED``). No listener, no scheduler, no inbox: the main process keeps those."""
        await self._open_database()
        async with _named("homeserver.address", f"cannot use the homeserver at {self.settings.homeserver.address}"):
            await self.appservice.start_client_only()
            await self.homeserver.ensure_bot(self.settings.appservice.bot_displayname)
        self.retention.admin_available = await self.admin.is_admin()
        await self.runner.take_back_from_dead_local_workers()
        self.runner.start()
        log.info("Job worker %s ready (up to %d jobs at once)", self.runner.worker, self.settings.jobs.concurrency)

    async def _schedule_forever(self) -> None:
        """Queue each team's periodic sweep; the schedule lives in the job table, so it survives restarts."""
        while True:
            try:
                await self.onboarding.announce()
                await schedule_sweeps(self.teams, self.stores.jobs, self.runner, self.settings.retention.sweep_interval)
                await self.lifecycle.check()
                await self.onboarding.remind_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Scheduled work failed")
            await asyncio.sleep(min(self.settings.retention.sweep_interval, 3600))

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking work, let running commands finish for ``grace`` seconds (then cancel
        them), hand running jobs back, and only then close the database."""
        self.appservice.ready = False
        if self.smtp:
            await self.smtp.stop()
        if self._scheduler:
            self._scheduler.cancel()
            await asyncio.gather(self._scheduler, return_exceptions=True)
            self._scheduler = None
        await self.runner.stop()
        await self.appservice.drain(grace)
        await self.events.drain(grace)
        await self.appservice.stop()
        await self.db.stop()
        log.info("Bridge stopped")


def _owner_only(database: str) -> None:
    """The embedded database holds members' data: readable by the bridge's user only."""
    path = sqlite_file(database)
    if path is None:
        return
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and file.stat().st_mode & 0o077:
            os.chmod(file, 0o600)


@asynccontextmanager
async def _named(key: str, what: str) -> AsyncIterator[None]:
    """A start-up step whose failure is the configuration's (or the environment's): say which key."""
    try:
        yield
    except ConfigError:
        raise
    except MatrixRequestError as e:
        hint = " (is the registration loaded by the homeserver, with this as_token?)" if e.http_status == 401 else ""
        raise ConfigError(key, f"{what}: {e.http_status} {e.errcode}{hint}") from e
    except (OSError, MatrixConnectionError, asyncio.TimeoutError) as e:
        raise ConfigError(key, f"{what}: {e.strerror if isinstance(e, OSError) and e.strerror else e}") from e
    except Exception as e:
        raise ConfigError(key, f"{what}: {type(e).__name__}: {e}") from e
