"""Wiring: database and stores, the homeserver client, the domain services, jobs, commands
and the provisioning API. Each service gets exactly what it uses."""

from __future__ import annotations

import asyncio
import logging
import os
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
from clutto_bridge.events import EventDispatcher
from clutto_bridge.jobs.export import TeamExport
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
from clutto_bridge.smtp import SmtpListener
from clutto_bridge.teams.access import AccessRecords
from clutto_bridge.teams.added_rooms import AddedRooms
from clutto_bridge.teams.audit import AuditLog
from clutto_bridge.teams.consent import ConsentService
from clutto_bridge.teams.contacts import ContactService
from clutto_bridge.teams.details import TeamDetails
from clutto_bridge.teams.email import EmailService
from clutto_bridge.teams.encryption import RoomEncryption
from clutto_bridge.teams.gate import Gatekeeper
from clutto_bridge.teams.integrations import IntegrationService
from clutto_bridge.teams.lifecycle import TrialLifecycle
from clutto_bridge.teams.members import MemberService
from clutto_bridge.teams.mydata import MyData
from clutto_bridge.teams.notices import NoticeService
from clutto_bridge.teams.onboarding import Onboarding
from clutto_bridge.teams.portal import PortalAccess
from clutto_bridge.teams.profiles import ProfileService
from clutto_bridge.teams.retention import RetentionService
from clutto_bridge.teams.rooms import RoomService
from clutto_bridge.teams.scim import ScimService
from clutto_bridge.teams.service import TeamService
from clutto_bridge.teams.usage import UsageService
from clutto_bridge.teams.webhooks import WebhookEvents
from clutto_bridge.web.antispam import AntispamEndpoints
from clutto_bridge.web.bodies import body_deadline
from clutto_bridge.web.collection import RequestCollection
from clutto_bridge.web.health import HealthEndpoint
from clutto_bridge.web.metrics import MetricsEndpoint
from clutto_bridge.web.portal.app import PORTAL_PREFIX, Portal
from clutto_bridge.web.provisioning import PREFIX, ProvisioningAPI
from clutto_bridge.web.scim import SCIM_PREFIX, ScimAPI
from clutto_bridge.web.signatures import strict_transport_security

log = logging.getLogger("clutto")


class Bridge:
    """One running bridge. Everything it needs is passed in; nothing is global."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = s = settings
        self.clock = clock = clock or SystemClock()
        a = s.appservice
        self.cipher = cipher = open_keyset(str(s.keyset_path))
        self.db: Database = create_database(a.database, a.database_opts, cipher)
        self.state_db = Database.create(a.database, upgrade_table=MembershipStateStore.upgrade_table)
        self.stores = db = Stores.over(self.db, cipher)
        # The answers before the write read through their own SQLite connection (none with PostgreSQL).
        self.gate_reader = create_reader(a.database)
        self.signing_keys = keys = signing_keys(
            s
        )  # made when missing; an open or broken key file stops here, naming it
        state_store = MembershipStateStore(self.state_db)
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
            state_store=state_store,
            inbox=db.inbox,
            now_ms=clock.now_ms,
            default_http_retry_count=3,
            log=logging.getLogger("clutto.appservice"),
        )
        # The bot's E2EE device: to-device messages and key counts from the transactions go to it,
        # encrypted events are decrypted before the handlers see them.
        self.device = BotDevice(self.appservice, state_store, a.database, KeysetFile(s.keyset_path), db.crypto_pickles)
        bot = lambda: self.appservice.intent  # noqa: E731 - the intent exists once the appservice does
        self.admin = admin = SynapseAdmin(bot)
        hs = Homeserver(bot, admin, s.homeserver.address, self.device)
        # This bridge's own registry: counts of several bridges in one process never mix.
        self.metrics = metrics = Metrics()
        metrics.allow("command", counted_names())
        self.audit = audit = AuditLog(
            db.audit,
            clock,
            metrics,
            signing_key=keys.current,
            checkpoint_rows=s.audit.checkpoint_rows,
            witness=WitnessFile(s.witness_path),
        )
        # On PostgreSQL every process (main, workers, CLI) hears of a queued job at once (LISTEN/NOTIFY).
        self.runner = runner = JobRunner(
            db.jobs, s.jobs, clock, metrics, JobNotifications.for_database(self.db, a.database)
        )
        self.webhooks = webhooks = WebhookEvents(s.webhooks, runner, clock)
        if s.webhooks:
            audit.subscribe(webhooks.audit_recorded)
        self.webhook_sender = WebhookSender(MessageSigner(keys))
        self.management_rooms = db.management_rooms

        self.teams = teams = TeamService(db.teams, db.rooms, db.members, hs, s, clock)
        self.consent = consent = ConsentService(db.consent, s, clock)
        self.members = members = MemberService(
            teams, db.members, db.teams, db.accounts, hs, admin, audit, consent, s, clock
        )
        rooms = RoomService(members, db.rooms, hs, audit, s.bridge.room_version, clock)
        integrations = IntegrationService(db.integrations, teams, db.members, hs, audit, s.integrations)
        self.details = details = TeamDetails(
            teams, db.teams, db.rooms, db.jobs, hs, admin, audit, s.bridge.team_name_max_length, webhooks
        )
        self.retention = retention = RetentionService(
            teams,
            db.teams,
            db.rooms,
            db.holds,
            db.references,
            db.jobs,
            runner,
            hs,
            audit,
            clock,
            db.timeline,
            MegolmSessions(self.db),
        )
        # Keys follow retention: no key of a session with expired messages goes out on a request.
        self.device.may_share = retention.may_share_key
        self.notices = notices = NoticeService(
            db.notices, db.management_rooms, teams, members, hs, s.marketing_default, clock, consent
        )
        self.lifecycle = lifecycle = TrialLifecycle(
            teams,
            db.teams,
            retention,
            db.jobs,
            runner,
            notices,
            audit,
            s.trial,
            str(s.export_folder),
            clock,
            portal_url=s.portal.base_url(s.appservice.url) if s.portal.enabled else None,
        )
        self.profiles = profiles = ProfileService(
            db.profiles, db.members, teams, hs, admin, notices, audit, s.profile, s.homeserver.domain, clock
        )
        self.onboarding = onboarding = Onboarding(
            members, db.members, db.profiles, consent, profiles, notices, s, clock, db.welcomes, audit
        )
        self.scim = scim = ScimService(
            db.scim,
            teams,
            members,
            profiles,
            db.accounts,
            retention,
            notices,
            admin,
            audit,
            clock,
            s.homeserver.domain,
            rooms=rooms,
            room_store=db.rooms,
            homeserver=hs,
            settings=s.scim,
        )
        contacts = ContactService(db.contacts, consent, admin, s.homeserver.domain, clock, hs, audit, db.accounts)
        mydata = MyData(db.members, db.accounts, profiles, consent, contacts, notices, audit)
        usage = UsageService(db.analytics, s.analytics.k)
        self.email = email = EmailService(db.email, db.teams, members, db.rooms, hs, audit, s.email, clock)
        self.smtp = SmtpListener(email, s.email) if s.email.enabled else None

        runner.register(
            JobKind.SWEEP,
            RetentionSweep(
                retention, db.teams, db.references, hs, admin, audit, s.retention, s.jobs.homeserver_rate, db.timeline
            ),
        )
        runner.register(
            JobKind.EXPORT,
            TeamExport(db.teams, db.rooms, db.members, hs, audit, lifecycle, s.jobs.homeserver_rate, clock, webhooks),
        )
        runner.register(JobKind.WEBHOOK, WebhookDelivery(s.webhooks, self.webhook_sender))
        runner.register(
            JobKind.PURGE,
            TeamPurge(db.teams, db.rooms, db.members, db.references, db.persons, retention, details, admin),
        )
        runner.register(JobKind.REENCRYPT, Reencryption(db.encrypted))

        self.encryption = encryption = RoomEncryption(teams, db.rooms, notices, hs, audit)
        added_rooms = AddedRooms(members, db.rooms, encryption, notices, hs, admin, audit, clock)
        ctx = Services(
            teams=teams,
            members=members,
            rooms=rooms,
            integrations=integrations,
            details=details,
            retention=retention,
            lifecycle=lifecycle,
            notices=notices,
            consent=consent,
            profiles=profiles,
            onboarding=onboarding,
            contacts=contacts,
            mydata=mydata,
            usage=usage,
            email=email,
            encryption=encryption,
            added_rooms=added_rooms,
            homeserver=hs,
            settings=s,
            scim=scim,
            portal=PortalAccess(db.portal, consent, s, clock) if s.portal.enabled else None,
        )
        self.homeserver = hs
        # Every request on the port (appservice, API, pages) is logged and recorded only as
        # policy.collection allows: the root application's middleware reaches every sub-app.
        self.access = AccessRecords(db.access, clock, s.collection.retention)
        collection = RequestCollection(s.collection.rules(), clock)
        self.appservice.runner_options = collection.runner_options()
        self.appservice.app.middlewares.insert(0, collection.middleware(self.access))
        # Every body on the port, too, arrives within appservice.body_timeout or gets 408.
        self.appservice.app.middlewares.insert(1, body_deadline(a.body_timeout))
        # aiosmtpd names a misbehaving client's address in its warnings: the same policy applies.
        self._peer_filter = collection.peer_filter()
        logging.getLogger("mail.log").addFilter(self._peer_filter)
        self.events = EventDispatcher(ctx, metrics)
        self.appservice.matrix_event_handler(self.events.handle)
        # Each periodic task on its own interval (jobs/schedule.py); started once the bridge is ready.
        self.schedule = Schedule(
            periodic_jobs(
                s,
                teams=teams,
                jobs=db.jobs,
                runner=runner,
                onboarding=onboarding,
                lifecycle=lifecycle,
                access=self.access,
                audit=audit,
            )
        )
        self._levels: asyncio.Task | None = None
        self._database_open = False
        if s.provisioning.enabled:
            api = ProvisioningAPI(ctx, s.provisioning.shared_secret, metrics, keys=keys)
            self.appservice.app.add_subapp(PREFIX, api.app)
        # SCIM 2.0 for the teams' identity providers: each request needs one team's SCIM token.
        self.appservice.app.add_subapp(SCIM_PREFIX, ScimAPI(scim, teams, keys=keys).app)
        if s.portal.enabled:
            # Checks the cookie registry against the cookies the portal sets: ConfigError if not.
            self.appservice.app.add_subapp(PORTAL_PREFIX, Portal(ctx, audit).app)
        self.gate = Gatekeeper(
            GateStore(self.db, self.gate_reader),
            db.members,
            db.integrations,
            consent,
            profiles,
            s,
            state_store.seen_profile,
            self.device.is_encrypted,
        )
        if s.antispam.enabled:
            AntispamEndpoints(self.gate, s.antispam.shared_secret).register(self.appservice.app)
        if s.analytics.metrics_enabled:
            MetricsEndpoint(usage, metrics, s.analytics.metrics_secret).register(self.appservice.app)
        HealthEndpoint(self.answers).register(self.appservice.app)
        if a.tls.enabled:
            self.appservice.app.on_response_prepare.append(strict_transport_security)

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
        unfinished = await self.appservice.resume_inbox()
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
        self.retention.admin_available = await self.admin.is_admin()
        if not self.retention.admin_available:
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
        self.schedule.start()
        self._levels = asyncio.create_task(self._check_power_levels(), name="clutto-power-levels")
        self.appservice.open_inbox()
        self.appservice.ready = True
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
        self.retention.admin_available = await self.admin.is_admin()
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
        await self.appservice.drain(grace)
        await self.events.drain(grace)
        await self.appservice.stop()
        await self.device.stop()
        await self._final_checkpoint()
        await self.access.close()
        await self.webhook_sender.close()
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
