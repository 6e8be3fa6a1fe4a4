"""Wiring: database and stores, the homeserver client, the domain services, jobs, commands
and the provisioning API. Each service gets exactly what it uses."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mautrix.util.async_db import Database

from clutto_bridge.clock import Clock, SystemClock
from clutto_bridge.commands.processor import counted_names
from clutto_bridge.config import ConfigError, Settings, signing_keys, sqlite_file
from clutto_bridge.context import Services
from clutto_bridge.crypto import DecryptionError, FieldCipher, KeysetError, KeysetFile
from clutto_bridge.crypto.http_signatures import MessageSigner
from clutto_bridge.crypto.witness import WitnessFile
from clutto_bridge.db import Stores, create_database
from clutto_bridge.db.gate import GateStore, create_reader
from clutto_bridge.db.job import JobKind, JobNotifications
from clutto_bridge.db.megolm_sessions import MegolmSessions
from clutto_bridge.domain.added_rooms import AddedRooms
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.consent import ConsentService
from clutto_bridge.domain.contacts import ContactService
from clutto_bridge.domain.details import TeamDetails
from clutto_bridge.domain.email import EmailService
from clutto_bridge.domain.encryption import RoomEncryption
from clutto_bridge.domain.gate import Gatekeeper
from clutto_bridge.domain.integrations import IntegrationService
from clutto_bridge.domain.lifecycle import TrialLifecycle
from clutto_bridge.domain.members import MemberService
from clutto_bridge.domain.mydata import MyData
from clutto_bridge.domain.notices import NoticeService
from clutto_bridge.domain.onboarding import Onboarding
from clutto_bridge.domain.orphans import Orphans
from clutto_bridge.domain.portal import PortalAccess
from clutto_bridge.domain.profiles import ProfileService
from clutto_bridge.domain.retention import RetentionService
from clutto_bridge.domain.rooms import RoomService
from clutto_bridge.domain.scim import ScimService
from clutto_bridge.domain.service import TeamService
from clutto_bridge.domain.usage import UsageService
from clutto_bridge.domain.webhooks import WebhookEvents
from clutto_bridge.events import EventDispatcher
from clutto_bridge.jobs.export import TeamExport
from clutto_bridge.jobs.inbox import InboxWork
from clutto_bridge.jobs.reach import HomeserverReach
from clutto_bridge.jobs.reencrypt import Reencryption
from clutto_bridge.jobs.retention_sweep import RetentionSweep
from clutto_bridge.jobs.runner import JobRunner
from clutto_bridge.jobs.schedule import Schedule, periodic_jobs
from clutto_bridge.jobs.team_purge import TeamPurge
from clutto_bridge.jobs.webhook import WebhookDelivery
from clutto_bridge.matrix.admin import SynapseAdmin
from clutto_bridge.matrix.appservice import CluttoAppService
from clutto_bridge.matrix.crypto import BotDevice, CryptoStoreKeyError
from clutto_bridge.matrix.errors import MatrixConnectionError, MatrixRequestError
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.matrix.state_store import MembershipStateStore
from clutto_bridge.metrics import Metrics
from clutto_bridge.outbound.webhooks import WebhookSender
from clutto_bridge.policy.collection import is_loopback
from clutto_bridge.policy.retention import RedactMode, RetentionBounds
from clutto_bridge.smtp import SmtpListener
from clutto_bridge.web.antispam import AntispamEndpoints
from clutto_bridge.web.bodies import body_deadline
from clutto_bridge.web.collection import RequestCollection
from clutto_bridge.web.health import HealthEndpoint
from clutto_bridge.web.metrics import MetricsEndpoint
from clutto_bridge.web.portal.app import PORTAL_PREFIX, Portal
from clutto_bridge.web.provisioning import PREFIX, ProvisioningAPI
from clutto_bridge.web.request_records import AccessRecords
from clutto_bridge.web.scim import SCIM_PREFIX, ScimAPI
from clutto_bridge.web.signatures import strict_transport_security

log = logging.getLogger("clutto")


class Bridge:
    """One running bridge. Everything it needs is passed in; nothing is global."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        # In the order each step needs the ones before it (mautrix's bridge.prepare_* steps).
        self._prepare_database()
        self._prepare_homeserver()
        self._prepare_records()
        self._prepare_teams()
        self._prepare_retention()
        self._prepare_people()
        self._prepare_jobs()
        self.services = self._services()
        self._prepare_requests()
        self._prepare_events()
        self._prepare_web()
        self._levels: asyncio.Task | None = None
        self._database_open = False

    def _prepare_database(self) -> None:
        """The keyset, the databases (not yet opened) and their stores, and the signing keys."""
        s, a = self.settings, self.settings.appservice
        self.cipher = open_keyset(str(s.keyset_path))
        self.db: Database = create_database(a.database, a.database_opts, self.cipher, readers=a.database_readers)
        self.state_db = Database.create(a.database, upgrade_table=MembershipStateStore.upgrade_table)
        self.stores = Stores.over(self.db, self.cipher)
        # The answers before the write read through their own SQLite connection (none with PostgreSQL).
        self.gate_reader = create_reader(a.database)
        # Made when missing; an open or broken key file stops here, naming it.
        self.signing_keys = signing_keys(s)
        self.state_store = MembershipStateStore(self.state_db)
        # Received events: kept in the inbox, then handled in room lanes (jobs/inbox.py).
        self.inbox_work = InboxWork(self.stores.inbox, self.clock.now_ms)

    def _prepare_homeserver(self) -> None:
        """The appservice (the port and the bot's intent), the bot's E2EE device, and the clients
        of the homeserver's client-server and admin APIs."""
        s, a = self.settings, self.settings.appservice
        self.appservice = CluttoAppService(
            tls_cert=a.tls.cert or None,
            tls_key=a.tls.key or None,
            server=s.homeserver.address,
            domain=s.homeserver.domain,
            as_token=a.as_token,
            hs_token=a.hs_token,
            bot_localpart=a.bot_username,
            id=a.id,
            verify_ssl=s.homeserver.verify_ssl,
            state_store=self.state_store,
            receiver=self.inbox_work,
            default_http_retry_count=3,
            log=logging.getLogger("clutto.appservice"),
        )
        # The bot's E2EE device: to-device messages and key counts from the transactions go to it,
        # encrypted events are decrypted before the handlers see them.
        self.device = BotDevice(
            self.appservice, self.state_store, a.database, KeysetFile(s.keyset_path), self.stores.crypto_pickles
        )
        bot = lambda: self.appservice.intent  # noqa: E731 - the intent exists once the appservice does
        self.admin = SynapseAdmin(bot)
        self.homeserver = Homeserver(bot, self.admin, s.homeserver.address, self.device)

    def _prepare_records(self) -> None:
        """What every service records to: metrics, the audit log, the job queue and the webhooks."""
        s, db, clock = self.settings, self.stores, self.clock
        # This bridge's own registry: counts of several bridges in one process never mix.
        self.metrics = Metrics()
        self.metrics.allow("command", counted_names())
        self.audit = AuditLog(
            store=db.audit,
            clock=clock,
            metrics=self.metrics,
            signing_key=self.signing_keys.current,
            checkpoint_rows=s.audit.checkpoint_rows,
            witness=WitnessFile(s.witness_path),
        )
        # On PostgreSQL every process (main, workers, CLI) hears of a queued job at once (LISTEN/NOTIFY).
        self.runner = JobRunner(
            store=db.jobs,
            settings=s.jobs,
            clock=clock,
            metrics=self.metrics,
            notifications=JobNotifications.for_database(self.db, s.appservice.database),
        )
        self.webhooks = WebhookEvents(receivers=s.webhooks, queue=self.runner, clock=clock)
        if s.webhooks:
            self.audit.subscribe(self.webhooks.audit_recorded)
        self.webhook_sender = WebhookSender(MessageSigner(self.signing_keys))
        self.management_rooms = db.management_rooms

    def _prepare_teams(self) -> None:
        """Teams, their members and rooms, and the bot's notices to people."""
        s, db, clock, hs, audit = self.settings, self.stores, self.clock, self.homeserver, self.audit
        r = s.retention
        self.retention_bounds = RetentionBounds(r.min, r.max, r.default)
        boot = secrets.token_hex(8)  # this process, in the room creations it records: its own are never orphans
        self.teams = teams = TeamService(
            store=db.teams,
            rooms=db.rooms,
            members=db.members,
            homeserver=hs,
            settings=s,
            clock=clock,
            retention_bounds=self.retention_bounds,
            orphans=Orphans(rooms=db.rooms, homeserver=hs, admin=self.admin, boot=boot),
            boot=boot,
        )
        self.consent = consent = ConsentService(store=db.consent, settings=s, clock=clock)
        self.members = members = MemberService(
            teams=teams,
            store=db.members,
            team_store=db.teams,
            accounts=db.accounts,
            homeserver=hs,
            admin=self.admin,
            audit=audit,
            consent=consent,
            settings=s,
            clock=clock,
        )
        self.rooms = RoomService(
            members=members,
            teams=teams,
            store=db.rooms,
            homeserver=hs,
            audit=audit,
            room_version=s.bridge.room_version,
            clock=clock,
        )
        self.integrations = IntegrationService(
            store=db.integrations,
            teams=teams,
            members=db.members,
            homeserver=hs,
            audit=audit,
            config=s.integrations,
            changes=members.changes,
        )
        self.details = TeamDetails(
            teams=teams,
            store=db.teams,
            rooms=db.rooms,
            jobs=db.jobs,
            homeserver=hs,
            admin=self.admin,
            audit=audit,
            name_max_length=s.bridge.team_name_max_length,
            events=self.webhooks,
        )
        self.notices = notices = NoticeService(
            store=db.notices,
            management_rooms=db.management_rooms,
            teams=teams,
            members=members,
            homeserver=hs,
            marketing_default=s.marketing_default,
            clock=clock,
            consent=consent,
        )
        self.encryption = RoomEncryption(
            teams=teams, rooms=db.rooms, notices=notices, homeserver=hs, audit=audit, mode=s.policy.encryption
        )
        self.added_rooms = AddedRooms(
            members=members,
            teams=teams,
            rooms=db.rooms,
            encryption=self.encryption,
            notices=notices,
            homeserver=hs,
            admin=self.admin,
            audit=audit,
            clock=clock,
        )

    def _prepare_retention(self) -> None:
        """Retention with its holds and sweeps, and the trial's lifecycle (warnings, exports, purge)."""
        s, db, clock, hs = self.settings, self.stores, self.clock, self.homeserver
        self.retention = RetentionService(
            teams=self.teams,
            store=db.teams,
            rooms=db.rooms,
            hold_store=db.holds,
            references=db.references,
            jobs=db.jobs,
            queue=self.runner,
            homeserver=hs,
            audit=self.audit,
            clock=clock,
            timeline=db.timeline,
            sessions=MegolmSessions(self.db),
            bounds=self.retention_bounds,
            operator_redact=RedactMode(s.retention.redact),
            server_name=s.homeserver.domain,
            admin=self.admin,
        )
        # Keys follow retention: no key of a session with expired messages goes out on a request.
        self.device.may_share = self.retention.may_share_key
        self.lifecycle = TrialLifecycle(
            teams=self.teams,
            store=db.teams,
            retention=self.retention,
            jobs=db.jobs,
            queue=self.runner,
            notices=self.notices,
            homeserver=hs,
            audit=self.audit,
            trial=s.trial,
            export_directory=str(s.export_folder),
            clock=clock,
            portal_url=s.portal.base_url(s.appservice.url) if s.portal.enabled else None,
        )

    def _prepare_people(self) -> None:
        """What a person has here: profile, onboarding, SCIM provisioning, contacts, their data,
        the team's email, and the gate that answers the homeserver before a join or a message."""
        s, db, clock, hs, audit = self.settings, self.stores, self.clock, self.homeserver, self.audit
        domain = s.homeserver.domain
        self.profiles = profiles = ProfileService(
            store=db.profiles,
            members=db.members,
            teams=self.teams,
            homeserver=hs,
            admin=self.admin,
            notices=self.notices,
            audit=audit,
            rules=s.profile,
            domain=domain,
            clock=clock,
        )
        self.onboarding = Onboarding(
            members=self.members,
            teams=self.teams,
            member_store=db.members,
            profile_store=db.profiles,
            consent=self.consent,
            profiles=profiles,
            notices=self.notices,
            settings=s,
            clock=clock,
            welcomes=db.welcomes,
            audit=audit,
        )
        self.scim = ScimService(
            store=db.scim,
            teams=self.teams,
            members=self.members,
            profiles=profiles,
            profile_store=db.profiles,
            profile_rules=s.profile,
            member_store=db.members,
            accounts=db.accounts,
            retention=self.retention,
            notices=self.notices,
            admin=self.admin,
            audit=audit,
            clock=clock,
            domain=domain,
            rooms=self.rooms,
            room_store=db.rooms,
            homeserver=hs,
            settings=s.scim,
        )
        self.contacts = ContactService(
            store=db.contacts,
            accounts=db.accounts,
            consent=self.consent,
            admin=self.admin,
            domain=domain,
            clock=clock,
            homeserver=hs,
            audit=audit,
        )
        self.mydata = MyData(
            members=db.members,
            accounts=db.accounts,
            profiles=profiles,
            consent=self.consent,
            contacts=self.contacts,
            notices=self.notices,
            audit=audit,
        )
        self.usage = UsageService(store=db.analytics, k=s.analytics.k)
        self.email = EmailService(
            store=db.email,
            team_store=db.teams,
            members=self.members,
            teams=self.teams,
            rooms=db.rooms,
            homeserver=hs,
            audit=audit,
            config=s.email,
            clock=clock,
        )
        self.smtp = SmtpListener(self.email, s.email) if s.email.enabled else None
        self.portal = (
            PortalAccess(store=db.portal, consent=self.consent, settings=s, clock=clock) if s.portal.enabled else None
        )
        self.gate = Gatekeeper(
            store=GateStore(self.db, self.gate_reader),
            members=db.members,
            integrations=db.integrations,
            consent=self.consent,
            profiles=profiles,
            settings=s,
            seen_profile=self.state_store.seen_profile,
            is_encrypted=self.device.is_encrypted,
        )

    def _prepare_jobs(self) -> None:
        """The handler of each job kind the runner takes from the queue."""
        s, db, hs, rate = self.settings, self.stores, self.homeserver, self.settings.jobs.homeserver_rate
        runner = self.runner
        runner.register(
            JobKind.SWEEP,
            RetentionSweep(
                retention=self.retention,
                teams=db.teams,
                references=db.references,
                homeserver=hs,
                admin=self.admin,
                audit=self.audit,
                settings=s.retention,
                timeline=db.timeline,
                clock=self.clock,
                homeserver_rate=rate,
            ),
        )
        runner.register(
            JobKind.EXPORT,
            TeamExport(
                teams=db.teams,
                rooms=db.rooms,
                members=db.members,
                homeserver=hs,
                audit=self.audit,
                lifecycle=self.lifecycle,
                clock=self.clock,
                events=self.webhooks,
                homeserver_rate=rate,
            ),
        )
        runner.register(JobKind.WEBHOOK, WebhookDelivery(receivers=s.webhooks, sender=self.webhook_sender))
        runner.register(
            JobKind.PURGE,
            TeamPurge(
                teams=db.teams,
                rooms=db.rooms,
                members=db.members,
                references=db.references,
                persons=db.persons,
                retention=self.retention,
                details=self.details,
                admin=self.admin,
            ),
        )
        runner.register(JobKind.REENCRYPT, Reencryption(columns=db.encrypted, cipher=self.cipher))

    def _services(self) -> Services:
        """The services that commands, the API and the event dispatcher call."""
        return Services(
            teams=self.teams,
            members=self.members,
            rooms=self.rooms,
            integrations=self.integrations,
            details=self.details,
            retention=self.retention,
            lifecycle=self.lifecycle,
            notices=self.notices,
            consent=self.consent,
            profiles=self.profiles,
            onboarding=self.onboarding,
            contacts=self.contacts,
            mydata=self.mydata,
            usage=self.usage,
            email=self.email,
            encryption=self.encryption,
            added_rooms=self.added_rooms,
            homeserver=self.homeserver,
            settings=self.settings,
            scim=self.scim,
            portal=self.portal,
        )

    def _prepare_requests(self) -> None:
        """Every request on the port (appservice, API, pages) is logged and recorded only as
        policy.collection allows: the root application's middleware reaches every sub-app."""
        s = self.settings
        self.access = AccessRecords(self.stores.access, self.clock, s.collection.retention)
        collection = RequestCollection(s.collection.rules(), self.clock)
        self.appservice.runner_options = collection.runner_options()
        self.appservice.app.middlewares.insert(0, collection.middleware(self.access))
        # Every body on the port, too, arrives within appservice.body_timeout or gets 408.
        self.appservice.app.middlewares.insert(1, body_deadline(s.appservice.body_timeout))
        # aiosmtpd names a misbehaving client's address in its warnings: the same policy applies.
        self._peer_filter = collection.peer_filter()
        logging.getLogger("mail.log").addFilter(self._peer_filter)

    def _prepare_events(self) -> None:
        """Events from the homeserver go to the dispatcher; periodic tasks wait for ``start``."""
        self.events = EventDispatcher(self.services, self.inbox_work, self.metrics)
        self.metrics.count_in_flight(lambda: self.inbox_work.in_flight)
        self.appservice.matrix_event_handler(self.events.handle)
        self.reach = HomeserverReach(appservice=self.appservice, metrics=self.metrics)
        # Each periodic task on its own interval (jobs/schedule.py); started once the bridge is ready.
        self.schedule = Schedule(
            periodic_jobs(
                self.settings,
                teams=self.teams,
                jobs=self.stores.jobs,
                runner=self.runner,
                onboarding=self.onboarding,
                lifecycle=self.lifecycle,
                access=self.access,
                audit=self.audit,
                reach=self.reach,
            )
        )

    def _prepare_web(self) -> None:
        """The HTTP endpoints beside the appservice's: provisioning API, SCIM, portal, antispam
        answers, metrics and health."""
        s, app, keys = self.settings, self.appservice.app, self.signing_keys
        if s.provisioning.enabled:
            api = ProvisioningAPI(self.services, s.provisioning.shared_secret, self.metrics, keys=keys)
            app.add_subapp(PREFIX, api.app)
        # SCIM 2.0 for the teams' identity providers: each request needs one team's SCIM token.
        app.add_subapp(SCIM_PREFIX, ScimAPI(self.scim, self.teams, keys=keys).app)
        if s.portal.enabled:
            # Checks the cookie registry against the cookies the portal sets: ConfigError if not.
            app.add_subapp(PORTAL_PREFIX, Portal(self.services, self.audit).app)
        if s.antispam.enabled:
            AntispamEndpoints(self.gate, s.antispam.shared_secret).register(app)
        if s.analytics.metrics_enabled:
            MetricsEndpoint(self.usage, self.metrics, s.analytics.metrics_secret).register(app)
        HealthEndpoint(self.answers).register(app)
        if s.appservice.tls.enabled:
            app.on_response_prepare.append(strict_transport_security)

    async def start(self) -> None:
        a = self.settings.appservice
        await self._open_database()
        remembered_since = self.clock.now_ms() - a.transaction_memory * 1000
        await self.stores.inbox.forget_before(remembered_since)
        # Events sent around or after the stop may reach the bridge late or not at all, but all
        # it acknowledged before is indexed: each room is marked at its highest index position
        # now, and its next sweep reads the history back to that point, not all since its last fill.
        await self.stores.timeline.mark_for_check()
        # Queued now, ahead of anything new in the same rooms; run once the bridge is ready.
        unfinished = await self.inbox_work.resume()
        if unfinished:
            log.info("Handling %d event(s) left unfinished by the last stop", unfinished)
        async with _named("appservice.port", f"cannot listen on {a.hostname}:{a.port}"):
            await self.appservice.start(a.hostname, a.port)
        log.info("Listening on %s:%d (%s)", a.hostname, a.port, "HTTPS" if a.tls.enabled else "plain HTTP")
        if not a.tls.enabled and not is_loopback(a.hostname):
            log.warning(
                "Serving plain HTTP on %s, which is not a loopback address: tokens, API answers and members' data "
                "cross the network unencrypted. Set appservice.tls.cert and appservice.tls.key, or put a "
                "TLS-terminating proxy in front and listen on 127.0.0.1.",
                a.hostname,
            )
        async with _named("homeserver.address", f"cannot use the homeserver at {self.settings.homeserver.address}"):
            await self.homeserver.ensure_bot(a.bot_displayname)
        await self._start_device()
        if not await self.admin.check_available():
            bot = self.homeserver.bot_mxid
            log.warning(
                "The bot %s is not a homeserver admin. RETENTION DEGRADES TO REDACTION ONLY: old events are "
                "redacted but stay in the homeserver database, and their media stays. Creating and deactivating "
                "accounts and deleting teams are refused. Make it one: PUT /_synapse/admin/v2/users/%s "
                '{"admin": true}',
                bot,
                bot,
            )
        log.info("Profiles are published as %s", await self.profiles.detect())
        await self.profiles.drop_disallowed()
        log.info(
            "Privacy policy version %s, consent mode %s", self.settings.consent.version, self.settings.consent.mode
        )
        finished = await self.teams.finish_interrupted()
        if finished:
            log.info("Finished creating %d team(s) interrupted by the last stop", finished)
        encrypted = await self.encryption.encrypt_existing()
        if encrypted:
            log.info("Turned encryption on in %d existing team room(s) (policy.encryption: require)", encrypted)
        deleted = await self.details.finish_interrupted()
        if deleted:
            log.info("Finished deleting %d team(s) interrupted by the last stop", deleted)
        await self.runner.take_back_from_dead_local_workers()
        self.runner.start()
        self._levels = asyncio.create_task(self._check_power_levels(), name="clutto-power-levels")
        self.inbox_work.open(self.appservice.handle_event)
        self.appservice.ready = True
        # Its first task asks the homeserver for a ping, once the inbox is open.
        self.schedule.start()
        if self.smtp:
            e = self.settings.email
            async with _named("email.port", f"cannot listen for mail on {e.hostname}:{e.port}"):
                await self.smtp.start()
        log.info("Bridge ready as %s", self.appservice.bot_mxid)

    async def _start_device(self) -> None:
        async with _named("homeserver.address", "cannot set up the bot's E2EE device"):
            try:
                await self.device.start(self.db)
            except CryptoStoreKeyError as e:
                raise ConfigError("security.keyset", str(e)) from None

    async def answers(self) -> None:
        """The liveness self-check (systemd watchdog, ``/_clutto/health``): the query behind the
        homeserver's questions runs. A room and user of no team: it reads, finds nothing."""
        await self.gate.store.facts("!clutto-liveness:invalid", "@clutto-liveness:invalid")

    async def _check_power_levels(self) -> None:
        """Once per start, beside the inbox: the gate answers meanwhile, so no start waits on it."""
        try:
            changed = await self.members.sync_all_power_levels()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Checking the power levels of team rooms failed")
            return
        if changed:
            log.info("Put back the power levels of %d team room(s)", changed)

    async def _open_database(self) -> None:
        a = self.settings.appservice
        async with _named("appservice.database", "cannot open the database"):
            await self.db.start()
            self.state_db.override_pool(self.db)  # shares the pool, which exists only once started
            await self.state_db.start()
        self._database_open = True
        _owner_only(a.database)
        try:
            await self.stores.encrypted.check_opens()
        except DecryptionError as e:
            raise ConfigError(
                "security.keyset",
                f"{self.settings.security.keyset} does not open the data in the database ({e}); "
                "is it the keyset this database was written with?",
            ) from None

    async def start_worker(self) -> None:
        """Run only the job runner (``clutto-bridge worker``): sweeps, exports and purges taken
        from the queue the main process and other workers share (PostgreSQL, ``FOR UPDATE SKIP
        LOCKED``). No listener, no scheduler, no inbox: the main process keeps those."""
        await self._open_database()
        async with _named("homeserver.address", f"cannot use the homeserver at {self.settings.homeserver.address}"):
            await self.appservice.start_client_only()
            await self.homeserver.ensure_bot(self.settings.appservice.bot_displayname)
        await self.admin.check_available()
        await self.runner.take_back_from_dead_local_workers()
        self.runner.start()
        log.info("Job worker %s ready (up to %d jobs at once)", self.runner.worker, self.settings.jobs.concurrency)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking work, let running commands finish for ``grace`` seconds (then cancel
        them), hand running jobs back, and only then close the database."""
        self.appservice.ready = False
        if self.smtp:
            await self.smtp.stop()
        await self.schedule.stop()
        if self._levels:
            self._levels.cancel()
            await asyncio.gather(self._levels, return_exceptions=True)
        self._levels = None
        await self.runner.stop()
        await self.inbox_work.drain(grace)
        # Each part is closed even when one before it fails (after a start that failed half-way,
        # some were never opened): the database last, whose threads would keep the process alive.
        for name, closing in (
            ("the appservice", self.appservice.stop),
            ("the bot's device", self.device.stop),
            ("the audit log's checkpoint", self._final_checkpoint),
            ("the access records", self.access.close),
            ("the webhook sender", self.webhook_sender.close),
        ):
            try:
                await closing()
            except Exception as e:
                log.warning("Stopping %s failed: %s", name, e, exc_info=log.isEnabledFor(logging.DEBUG))
        logging.getLogger("mail.log").removeFilter(self._peer_filter)
        if self.gate_reader is not None:
            self.gate_reader.close()
        await self.db.stop()
        log.info("Bridge stopped")

    async def _final_checkpoint(self) -> None:
        """Sign what the log gained since the last checkpoint, so no row waits for the next start."""
        if not self._database_open:
            return
        try:
            await self.audit.checkpoint()
        except Exception as e:
            log.warning("Could not sign the audit log's last rows on stop: %s", e)


def open_keyset(path: str) -> FieldCipher:
    """The cipher of the keyset file; a missing, unreadable or too open file stops start-up
    with one line naming it. There is no plaintext fallback."""
    try:
        return FieldCipher.from_file(path)
    except KeysetError as e:
        raise ConfigError("security.keyset", str(e)) from None


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
    except (TimeoutError, OSError, MatrixConnectionError) as e:
        raise ConfigError(key, f"{what}: {e.strerror if isinstance(e, OSError) and e.strerror else e}") from e
    except Exception as e:
        raise ConfigError(key, f"{what}: {type(e).__name__}: {e}") from e
