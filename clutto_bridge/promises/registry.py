"""The sixteen promises of the privacy policy as data: what each says, the config keys that
shape it, the modules that keep it, the settings that weaken it and what is not built yet.

This is the one place the map is written. ``docs/promises.md`` is generated from it
(``clutto-bridge promises --markdown``), the compliance report (``clutto-bridge promises
-c config.yaml``, ``GET /_clutto/v1/promises``) checks a configuration against it, and the
unit tests hold it to the code: every key exists, every module exists, and every promise
that is built has an integration test marked ``@pytest.mark.promise("P..")``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Built(str, Enum):
    """How much of a promise's mechanism exists."""

    YES = "built"
    PARTLY = "partly built"
    NO = "not yet enforced"


@dataclass(frozen=True)
class Weakening:
    """A value of a config key that keeps the bridge from keeping the promise fully."""

    key: str  # dotted, as in config.yaml
    values: tuple[str, ...]  # as written in config.yaml
    effect: str  # what members lose with it, in a sentence


@dataclass(frozen=True)
class Homeserver:
    """Something the promise needs from the homeserver that the bridge's config cannot show."""

    needs: str
    otherwise: str
    checked_with: str | None = None  # the homeserver.yaml key the report reads with --homeserver-config


@dataclass(frozen=True)
class Pending:
    """A part of the mechanism or a setting that is not built yet, and the issue that will build it.

    A promise whose ``built`` is ``YES`` may still list some: they strengthen what is kept
    (enforcement before the write, more settings) rather than complete it.
    """

    what: str
    issue: int


@dataclass(frozen=True)
class Promise:
    id: str
    title: str  # a line, for tables
    statement: str  # the promise in our words
    mechanism: tuple[str, ...]  # how the bridge keeps it, one point each
    settings: tuple[str, ...] = ()  # dotted keys that shape it (all exist in config.py)
    enforced_in: tuple[str, ...] = ()  # modules, dotted, that keep it
    weakened_by: tuple[Weakening, ...] = ()
    homeserver: tuple[Homeserver, ...] = ()
    pending: tuple[Pending, ...] = ()
    built: Built = field(default=Built.YES)

    @property
    def issues(self) -> tuple[int, ...]:
        return tuple(sorted({p.issue for p in self.pending}))


BOT_ADMIN = Homeserver(
    "the bridge's bot is a homeserver admin (checked at start-up; the demo sets it)",
    "without it the bridge cannot use Synapse's admin API",
)
BEFORE_THE_WRITE = Homeserver(
    "synapse-http-antispam is installed in Synapse's environment and listed under `modules:` with the "
    "bridge's URL and `antispam.shared_secret` (docs/setup/enforcement.md); `doctor` checks it",
    "the bridge enforces after the fact: what it refuses is stored first and visible for a moment before "
    "it is removed, reverted or put back",
)
BEFORE_THE_WRITE_MODULES = ("clutto_bridge.policy.gate", "clutto_bridge.domain.gate", "clutto_bridge.web.antispam")
BEFORE_THE_WRITE_KEYS = ("antispam.enabled", "antispam.shared_secret")


PROMISES: tuple[Promise, ...] = (
    Promise(
        "P1",
        "the team's data belongs to the team and its Customer",
        "Customer Data (group chats, individual chats, pictures, videos, files, edits and deletions) "
        "belongs to the team and is governed by its Customer.",
        (
            "A team is a Matrix space; its group chats are rooms in that space whose join rule admits "
            "only members of the space (`restricted`), so someone outside the team, or removed from it, "
            "cannot join; the room of an identity provider's group is invite-only, for the group's members.",
            "Individual chats between members (`dm USER`) are direct rooms the bot creates and records as the team's.",
            "Every team room is recorded in the bridge's database, so retention, export and purge reach "
            "all of them; a space or room whose creation a crash cut off before it was recorded is "
            "recognised by the marker in its creation content and deleted on the next start.",
            "With synapse-http-antispam the homeserver asks the bridge before it stores a join or an invite: "
            "someone outside the team (not an allowed bot), or removed from it, is refused with a message, "
            "whoever invites; without it such a person is removed right after.",
            "Only the bot may invite or change a team room's join rule or history visibility (a power level "
            "above every role), so the homeserver itself refuses a hand-made invite, also while the bridge is down.",
        ),
        settings=("bridge.default_rooms", "bridge.room_version", *BEFORE_THE_WRITE_KEYS),
        enforced_in=(
            "clutto_bridge.domain.service",
            "clutto_bridge.domain.rooms",
            "clutto_bridge.matrix.spaces",
            "clutto_bridge.domain.orphans",
            *BEFORE_THE_WRITE_MODULES,
        ),
        homeserver=(BEFORE_THE_WRITE,),
    ),
    Promise(
        "P2",
        "a profile is first name, last name, designation and photo",
        "A profile holds first name, last name, designation and photo; nothing else is published.",
        (
            "Text is trimmed and validated (length; no control or format characters except the joiners "
            "emoji and scripts need); a photo must be an allowed image type and size, checked on the "
            "homeserver's copy by its content, not its declared type.",
            "The bridge publishes the allowed fields (custom profile fields where the homeserver has "
            "them, otherwise a state event in each team space) and deletes any other custom field.",
            "On a join and on every change of display name or avatar in a team room the bridge compares "
            "them with the profile and, as configured, puts them back, warns, or does nothing; each "
            "reset is recorded and explained to the member. With synapse-http-antispam and `enforce: reset`, "
            "a member's own change of name or avatar in a team room is refused before it is stored (a "
            "global name change then reaches rooms outside the team only), and a state event publishing "
            "profile fields is written by the bridge only.",
        ),
        settings=(
            "policy.profile.allowed",
            "policy.profile.required",
            "policy.profile.max_length",
            "policy.profile.photo_types",
            "policy.profile.photo_max_kib",
            "policy.profile.display_name",
            "policy.profile.enforce",
            "policy.reminder_interval",
            *BEFORE_THE_WRITE_KEYS,
        ),
        enforced_in=(
            "clutto_bridge.policy.profile",
            "clutto_bridge.domain.profiles",
            "clutto_bridge.events",
            *BEFORE_THE_WRITE_MODULES,
        ),
        weakened_by=(
            Weakening(
                "policy.profile.enforce",
                ("warn",),
                "a display name or avatar that differs from the profile stays published; the member is only told",
            ),
            Weakening(
                "policy.profile.enforce",
                ("off",),
                "a display name or avatar that differs from the profile stays published, and nobody is told",
            ),
        ),
        homeserver=(
            Homeserver(BOT_ADMIN.needs, "a changed display name or avatar cannot be put back"),
            BEFORE_THE_WRITE,
        ),
    ),
    Promise(
        "P3",
        "sign-up collects only email, team name, user name, password",
        "Account and team setup collect only email, team name, user name and password.",
        (
            "`account create USERNAME EMAIL` (and the API) creates the homeserver account through the "
            "admin API; the initial password is told once to whoever created the account and never stored.",
            "Of a new member the bridge keeps only the user ID and the email, the email encrypted "
            "(AES-256-GCM, P12) with a keyed HMAC of it beside it for finding the account by email.",
            "SCIM 2.0 (`/_clutto/scim/v2`, a team's identity provider) creates accounts the same way and keeps "
            "only userName and externalId (encrypted), the names and title as the profile fields the policy "
            "allows, and one email; phone numbers, addresses, manager, employee number and the rest are "
            "dropped before anything is stored or logged, and the declared schema lists only what is kept.",
        ),
        settings=("provisioning.enabled", "security.keyset"),
        enforced_in=(
            "clutto_bridge.domain.members",
            "clutto_bridge.matrix.admin",
            "clutto_bridge.db.account",
            "clutto_bridge.web.scim",
            "clutto_bridge.domain.scim",
        ),
        homeserver=(Homeserver(BOT_ADMIN.needs, "accounts cannot be created or deactivated"),),
    ),
    Promise(
        "P4",
        "log data only as configured, kept only as long as configured",
        "Log data (IP address, referrer, browser, time, language, cookies) is collected only as "
        "configured and kept only as long as configured.",
        (
            "Every request on the bridge's port (appservice endpoints, provisioning API, metrics, pages) "
            "goes through one policy: the access log line and the access record keep the client's address "
            "whole, truncated (IPv4 /24, IPv6 /48), as a keyed hash whose key is random per UTC day and "
            'never written, or not at all; the browser as sent, as its family ("Firefox on Linux") or '
            "not at all; the referrer whole, as its origin or not at all; the language or not.",
            "X-Forwarded-For is believed only from `policy.collection.trusted_proxies`. Paths are kept as "
            "route templates, never as requested (they hold ids, query strings may hold tokens). aiohttp's "
            "own access logger is replaced and its error lines name the peer as the policy keeps it.",
            "Access records older than `policy.collection.retention` are deleted by the schedule. The "
            "bridge never asks the homeserver for device data (whois, devices).",
            "`clutto-bridge doctor` audits and `--fix`es the homeserver's own collection: "
            "`user_ips_max_age`, its request log (`synapse.access`), `redaction_retention_period`, "
            "media retention, URL previews, stats reporting, profile visibility.",
        ),
        settings=(
            "policy.collection.ip",
            "policy.collection.user_agent",
            "policy.collection.referrer",
            "policy.collection.language",
            "policy.collection.retention",
            "policy.collection.trusted_proxies",
        ),
        enforced_in=(
            "clutto_bridge.policy.collection",
            "clutto_bridge.web.collection",
            "clutto_bridge.web.request_records",
            "clutto_bridge.doctor.checks",
        ),
        weakened_by=(
            Weakening("policy.collection.ip", ("full",), "every client's full IP address is logged and kept"),
            Weakening("policy.collection.referrer", ("full",), "whole referrer URLs (paths, queries) are kept"),
        ),
        homeserver=(
            Homeserver(
                "the homeserver's `user_ips_max_age` is no longer than `policy.collection.retention` "
                "and its request log is off (run `clutto-bridge doctor`)",
                "the homeserver keeps IP addresses and request logs for its own defaults (28 days)",
                checked_with="user_ips_max_age",
            ),
        ),
        built=Built.YES,
    ),
    Promise(
        "P5",
        "necessary cookies always; other cookies only with consent",
        "Strictly necessary session cookies always; persistent and analytics cookies only with the member's consent.",
        (
            "The privacy portal (served by the bridge under `/portal/`) sets only the cookies its code "
            "declares, and each must be in the cookie registry `policy.cookies` (name, purpose, lifetime, "
            "category `necessary|preferences|analytics`) under the same category, or the bridge does not start.",
            "Before the member chooses, only `necessary` cookies are set: the session cookie (an opaque id, "
            "HttpOnly, SameSite=Lax, Secure over https, lifetime from the registry; the session itself is "
            "kept in the bridge database by its SHA-256 hash).",
            "A banner on the first visit offers accept all, necessary only, or choose; only the categories the "
            "registry holds a cookie in are offered, and accept all records those and nothing more (no consent to "
            "analytics while there is no analytics cookie). The choice is recorded "
            "with its time and the policy version, shown on the cookie page and in `mydata`, and can be "
            "changed there; withdrawing deletes the cookies it no longer allows at once.",
            "The privacy page renders the registry as a table. Pages carry a strict Content-Security-Policy "
            "(no script, no third-party resource, no framing) and every form a CSRF token.",
        ),
        settings=(
            "policy.cookies",
            "portal.enabled",
            "portal.public_url",
            "portal.link_lifetime",
            "portal.links_per_hour",
        ),
        enforced_in=(
            "clutto_bridge.policy.cookies",
            "clutto_bridge.domain.portal",
            "clutto_bridge.web.portal.cookies",
            "clutto_bridge.web.portal.security",
            "clutto_bridge.web.portal.sessions",
        ),
    ),
    Promise(
        "P6",
        "contacts are imported only with the member's permission",
        "Contacts are imported only with the member's permission.",
        (
            "`contacts allow` records the permission with its time; before it an import is refused, and "
            "a file sent to the bot is not even downloaded.",
            "Only names, email addresses and Matrix IDs of a vCard are kept; matches are offered as people "
            "to invite, nobody is invited automatically.",
            "`contacts revoke` deletes every imported contact and the permission. The `.vcf` file does not "
            "stay on the homeserver: the bot redacts its message and deletes its media. A vCard posted in a "
            "team room is not imported. At most 1 MiB and 5,000 cards.",
        ),
        enforced_in=("clutto_bridge.policy.contacts", "clutto_bridge.domain.contacts", "clutto_bridge.commands.people"),
        homeserver=(Homeserver(BOT_ADMIN.needs, "the media of a sent vCard stays on the homeserver"),),
    ),
    Promise(
        "P7",
        "service notices reach everyone; marketing only those who opted in",
        "Service notices always reach members; marketing reaches only those who opted in.",
        (
            "Notices and marketing are separate channels: notices (policy changes, trial warnings, profile "
            "resets) reach every member in their chat with the bot.",
            "Marketing reaches only members who chose it (`marketing on|off`), checked at the moment of "
            "sending; `POST /_clutto/v1/notices` answers how many were delivered and skipped.",
        ),
        settings=("policy.marketing_default",),
        enforced_in=("clutto_bridge.domain.notices", "clutto_bridge.commands.preferences"),
        weakened_by=(
            Weakening(
                "policy.marketing_default",
                ("true",),
                "members who never chose receive marketing: opting out replaces opting in",
            ),
        ),
    ),
    Promise(
        "P8",
        "members agree to the current policy; changes are announced",
        "Members agree to the current version of the policy, and changes are announced.",
        (
            "Policy texts are versioned Markdown files; a new member is sent the summary, `policy` shows "
            "the text, `accept` records the version and the time.",
            "A new version is announced to every member of every team once; a version marked "
            "`reconsent: true` asks everyone to accept again.",
            "In block mode (the default) a member who has not accepted cannot send in team rooms (their power level is "
            "held below the send level) until they accept; in remind mode they are reminded every "
            "`policy.reminder_interval`. The owner, admins and the operator see who accepted at "
            "`GET /_clutto/v1/teams/{id}/consent`.",
            "With synapse-http-antispam, block mode also refuses such a member's message before it is "
            "stored (M_CONSENT_NOT_GIVEN, saying how to accept); the power levels stay as the fallback.",
        ),
        settings=(
            "policy.version",
            "policy.consent.texts",
            "policy.consent.mode",
            "policy.reminder_interval",
            *BEFORE_THE_WRITE_KEYS,
        ),
        enforced_in=(
            "clutto_bridge.policy.consent",
            "clutto_bridge.domain.consent",
            "clutto_bridge.domain.onboarding",
            *BEFORE_THE_WRITE_MODULES,
        ),
        weakened_by=(
            Weakening(
                "policy.consent.mode",
                ("remind",),
                "members who have not accepted the current version can still send in team rooms; they are "
                "only reminded",
            ),
        ),
        homeserver=(BEFORE_THE_WRITE,),
    ),
    Promise(
        "P9",
        "the Customer controls provisioning, roles, integrations, retention, export, ownership",
        "The Customer controls provisioning, permissions, integrations, retention, export and ownership.",
        (
            "Roles (owner, admin, member, guest) are power levels in the space and every team room; a level "
            "changed by hand is put back and recorded.",
            "Only allowed bots and widgets stay in team rooms; others are removed and the removal recorded.",
            "Retention (P11), export with a manifest of SHA-256 sums, legal holds and ownership transfer.",
            "With synapse-http-antispam a power level change that does not match the roles, and a widget "
            "outside the allowed prefixes, are refused before they are stored (the bot's own writes pass).",
            "The Customer's identity provider provisions and deprovisions through SCIM 2.0 with a team's own "
            "token (made and revoked by the owner or an admin, stored as a hash): `active: false` or DELETE "
            "removes the person from every team room and the power levels at once, the admins/members/guests "
            "groups are the roles (the owner never changes through SCIM), each change audited as `scim:<token>`.",
        ),
        settings=(
            "bridge.power_levels",
            "policy.integrations.bots",
            "policy.integrations.widget_url_prefixes",
            "export.directory",
            "provisioning.enabled",
            "provisioning.shared_secret",
            *BEFORE_THE_WRITE_KEYS,
        ),
        enforced_in=(
            "clutto_bridge.domain.members",
            "clutto_bridge.domain.power",
            "clutto_bridge.policy.integrations",
            "clutto_bridge.domain.integrations",
            "clutto_bridge.jobs.export",
            "clutto_bridge.domain.scim",
            *BEFORE_THE_WRITE_MODULES,
        ),
        homeserver=(BEFORE_THE_WRITE,),
    ),
    Promise(
        "P10",
        "after the trial and a grace period, a team's data is purged irreversibly",
        "Data is retained for a set period after the trial ends, then purged irreversibly.",
        (
            "A team starts on the trial plan; the operator sets `paid` (`clutto-bridge plan paid --team ID` "
            "or `PUT /_clutto/v1/teams/{id}/plan`). The owner is warned before the end of the grace period.",
            "A team still on trial is then purged: media deleted, every room deleted with purge through the "
            "admin API, accounts Clutto created for it that belong to no other team deactivated with "
            "erasure, its rows removed. An export can be required first; a legal hold stops the purge.",
        ),
        settings=("policy.trial.length", "policy.trial.grace", "policy.trial.warnings"),
        enforced_in=("clutto_bridge.policy.trial", "clutto_bridge.domain.lifecycle", "clutto_bridge.jobs.team_purge"),
        homeserver=(Homeserver(BOT_ADMIN.needs, "rooms and media cannot be purged from the homeserver"),),
    ),
    Promise(
        "P11",
        "each team sets how long its messages are kept",
        "Each team's messages are kept only as long as the team chose: older ones are removed from "
        "the homeserver, unless a legal hold stops it.",
        (
            "Owners and admins set the team's lifetime within the operator's bounds; every team room "
            "carries `m.room.retention`.",
            "Sweeps find expired events in the bridge's index of every team room event (filled from the "
            "homeserver where the bridge missed events), purge that history from the homeserver's database "
            "through the admin API, once per room up to the cutoff, and delete the media only removed events "
            "referenced. They redact as `policy.retention.redact` says (a team may ask for more): `auto` "
            "redacts in rooms that have or had members from other homeservers, `always` everywhere; both "
            "redact expired events a purge cannot reach and the edits and reactions of expired messages. "
            "Sweeps are durable jobs that resume after a crash.",
        ),
        settings=(
            "policy.retention.min",
            "policy.retention.max",
            "policy.retention.default",
            "policy.retention.sweep_interval",
            "policy.retention.batch_size",
            "policy.retention.purge_slice",
            "policy.retention.redact",
        ),
        enforced_in=(
            "clutto_bridge.policy.retention",
            "clutto_bridge.domain.retention",
            "clutto_bridge.jobs.retention_sweep",
        ),
        homeserver=(
            Homeserver(BOT_ADMIN.needs, "sweeps only redact: the originals stay in the homeserver's database"),
            Homeserver(
                "the homeserver's `redaction_retention_period` is no longer than `policy.retention.min`",
                "the originals of redacted messages stay on the homeserver that long (Synapse: 7d)",
                checked_with="redaction_retention_period",
            ),
        ),
        weakened_by=(
            Weakening(
                "policy.retention.redact",
                ("never",),
                "nothing is redacted: other homeservers keep their copies of expired messages, imported "
                "history a purge cannot reach stays readable, and edits of expired messages stay",
            ),
        ),
    ),
    Promise(
        "P12",
        "data is encrypted on the database level, end to end",
        "Data is encrypted on the database level: sensitive data in our database, and what members "
        "write end to end, so the homeserver's database holds only ciphertext of it.",
        (
            "Our database: account emails, profile fields, imported contacts and events waiting in the "
            "inbox are encrypted in the stores with AES-256-GCM (the `cryptography` library): each value "
            "carries its key id and a fresh 96-bit nonce, and its table, column and row key as associated "
            "data, so a value copied into another row or column does not decrypt.",
            "The keys live in the keyset file (`security.keyset`, owner-readable only; start-up refuses "
            "a missing or too open file, with no plaintext fallback). `keys rotate` adds a primary key "
            "and queues a re-encryption job that works in resumable batches; `keys status` counts the "
            "values per key; `keys retire` refuses while a value uses the key.",
            "Equality lookups (email to account) use a keyed HMAC index, never the plaintext; members' "
            "display names and avatars are not cached by the bridge at all; upgrade v12 encrypted what "
            "older versions stored in plaintext.",
            "The homeserver's database: with `policy.encryption` `default` or `require`, team rooms, direct "
            "chats and the chat with the bot are created with `m.room.encryption` (Megolm; a session lasts "
            "at most a week, 100 messages, and never longer than the team's retention), so members' "
            "clients encrypt what they write and the homeserver stores ciphertext.",
            "The bot is an end-to-end encryption device of its own (mautrix's OlmMachine, created by the "
            "appservice through MSC4190, its to-device messages and key counts in the transactions through "
            "MSC2409/MSC3202), cross-signed by the bot's identity, whose recovery key is kept in the keyset "
            "file and never logged. Its crypto store is in the bridge database, pickled with a key derived "
            "from the keyset with HKDF (`keys rotate` re-pickles it at the next start).",
            "The bot decrypts what it reads and encrypts all it sends into an encrypted room, files "
            "included; it never writes plaintext there. Its keys go to the devices of the room's current "
            "members only, and a leave or ban ends the session, so a removed member's devices get no "
            "keys for what follows. A message whose key never came is answered in words, and the key is "
            "asked for.",
            "With `require`, the homeserver refuses a plaintext message in an encrypted team room before it "
            "stores it, and under every mode nobody but the bot changes a team room's encryption.",
            "A team's export holds what members wrote in encrypted rooms decrypted with the bot's keys (it has "
            "them for everything sent while it was in the room), encrypted files included; an event it has no "
            'key for stays the ciphertext it is, marked `"decrypted": false`, and the manifest counts and '
            "lists those. `mydata` holds no room content.",
            "A vCard or profile photo sent to the bot as an encrypted attachment is decrypted and taken like "
            "any other; the vCard's message is redacted and its media deleted, and the photo becomes a copy "
            "in the clear (profiles are public) while the encrypted image is removed.",
            "Team rooms made before encryption was on get it: with `require` at the next start, with "
            "`default` when an owner or admin asks (`rooms encrypt`, the API). It cannot be undone, so the "
            "owner is told first, in their chat with the bot, which rooms; a room encrypted already is left "
            "as it is. A room an owner or admin adds to the team's space gets the team's rules: the bot joins "
            "it, records it as a team room, sets its retention, its power levels as far as the room lets it, "
            "and its encryption.",
            "Keys follow retention: the bridge notes which Megolm session each encrypted team room message "
            "used, and a retention sweep deletes the bot's copy of every session whose messages all expired, "
            "so neither the bridge nor a backup of its database decrypts them; a legal hold keeps them as it "
            "keeps the messages, and the trial purge deletes the team's. On a key request the bot shares no "
            "session with a message older than the team's retention, nor one it saw no message of. "
            "`retention status` shows the sessions kept and deleted per room.",
        ),
        settings=("security.keyset", "policy.encryption"),
        enforced_in=(
            "clutto_bridge.crypto.cipher",
            "clutto_bridge.crypto.keyset",
            "clutto_bridge.db.encrypted",
            "clutto_bridge.jobs.reencrypt",
            "clutto_bridge.matrix.state_store",
            "clutto_bridge.matrix.crypto",
            "clutto_bridge.policy.encryption",
            "clutto_bridge.domain.gate",
            "clutto_bridge.jobs.export",
            "clutto_bridge.domain.sent_files",
            "clutto_bridge.domain.encryption",
            "clutto_bridge.domain.added_rooms",
            "clutto_bridge.policy.session_keys",
            "clutto_bridge.db.megolm_sessions",
        ),
        weakened_by=(
            Weakening(
                "policy.encryption",
                ("off",),
                "rooms are created without end-to-end encryption: the homeserver's database, its backups "
                "and anyone who reads them see members' messages and files in plaintext",
            ),
        ),
        homeserver=(
            Homeserver(
                "the homeserver delivers to-device messages and key counts to appservices "
                "(`experimental_features`: `msc2409_to_device_messages_enabled`, "
                "`msc3202_transaction_extensions`; `clutto-bridge doctor --fix`) and the registration "
                "allows appservice devices (`io.element.msc4190`)",
                "the bot has no device or gets no keys: it cannot read encrypted rooms and does not write into them",
                checked_with="experimental_features",
            ),
            BEFORE_THE_WRITE,
        ),
    ),
    Promise(
        "P13",
        "web traffic uses HTTPS and carries our signature",
        "Web traffic uses HTTPS and carries our digital signature.",
        (
            "With `appservice.tls.cert` and `appservice.tls.key` the bridge serves HTTPS on its port (appservice, "
            "provisioning API, portal, metrics), every response carries Strict-Transport-Security, and the "
            "registration written by `generate-registration` gives the homeserver an https:// URL. Without them it "
            "speaks plain HTTP, meant for 127.0.0.1 (the default `appservice.hostname`) behind a TLS-terminating proxy.",
            "The report and the portal's privacy page judge the listener the bridge runs on: kept with TLS; on "
            "loopback behind a proxy the operator declares in `policy.collection.trusted_proxies` (the example "
            "declares one on the same machine), kept but depending on that proxy serving HTTPS; weakened on any "
            "other plain HTTP listener, on loopback with no proxy declared (the demo), and when `portal.public_url` "
            "sends browsers to a plain http:// address that is not loopback.",
            "Every provisioning API response, refusals and file downloads included, carries an RFC 9421 signature "
            "(`Signature-Input`, `Signature`) over `@status`, `content-type` and `content-digest` (RFC 9530), made "
            "with the Ed25519 key `security.signing_key`, naming the key (`keyid`, its JWK thumbprint) and the time.",
            "The public keys, current and earlier (`security.previous_signing_keys`), are published as a JWK set at "
            "`GET /_clutto/v1/keys`, the one endpoint that needs no token.",
            "Webhooks (`webhooks`: `audit`, `team.purged`, `export.ready`) are durable jobs, retried with backoff, "
            "and signed the same way over `@method`, `@target-uri`, `content-type` and `content-digest`.",
            "`clutto-bridge doctor` warns when the bridge or the homeserver's client listener speaks plain HTTP on "
            "an address that is not loopback.",
        ),
        settings=(
            "appservice.tls.cert",
            "appservice.tls.key",
            "appservice.hostname",
            "policy.collection.trusted_proxies",
            "portal.public_url",
            "security.signing_key",
            "security.previous_signing_keys",
            "webhooks",
        ),
        enforced_in=(
            "clutto_bridge.crypto.signing",
            "clutto_bridge.crypto.http_signatures",
            "clutto_bridge.web.signatures",
            "clutto_bridge.web.keys",
            "clutto_bridge.outbound.webhooks",
            "clutto_bridge.domain.webhooks",
            "clutto_bridge.jobs.webhook",
            "clutto_bridge.doctor.checks",
            "clutto_bridge.promises.compliance",
        ),
        homeserver=(
            Homeserver(
                "the homeserver's client listener serves HTTPS (TLS, or loopback behind a TLS proxy; `doctor` warns "
                "otherwise)",
                "members' Matrix clients send passwords, tokens and messages to it unencrypted",
            ),
        ),
        built=Built.YES,
    ),
    Promise(
        "P14",
        "what is shared or destroyed is recorded",
        "Every disclosure of data and every destructive action is recorded.",
        (
            "The audit log records every destructive action and every enforcement with time, actor, target and "
            "counts: redactions, purges, team deletions and purges, holds, exports, removals, role and power "
            "level changes, profile resets, integration removals.",
            "It records every disclosure too: the operator reading a member's data, consent records or profile, "
            "the team's consent overview read by its managers, exports requested, written and downloaded, "
            "contacts matched to accounts, a member's own data exported as a file, and mail headers posted to "
            "a team's email room.",
            "Each row carries the SHA-256 hash of the previous row and its own hash over RFC 8785 canonical "
            "JSON; appends from several processes are serialised into one chain. The newest row is signed "
            "with the bridge's Ed25519 key every `audit.checkpoint_rows` rows, every "
            "`audit.checkpoint_interval` and on stop; public keys are kept, so checkpoints verify after the "
            "key is rotated. Each checkpoint is also written to a witness file beside the keyset, outside the "
            "database, so deleting the newest rows together with their checkpoints is caught.",
            "`clutto-bridge audit verify` checks the chain, the checkpoints and the witness offline, from the "
            "database or from an `audit export` file, and names the first row or checkpoint that is missing or "
            "does not match.",
        ),
        settings=("security.signing_key", "security.keyset", "audit.checkpoint_rows", "audit.checkpoint_interval"),
        enforced_in=(
            "clutto_bridge.domain.audit",
            "clutto_bridge.db.audit",
            "clutto_bridge.crypto.chain",
            "clutto_bridge.crypto.witness",
            "clutto_bridge.audit_tool",
        ),
    ),
    Promise(
        "P15",
        "analytics only on aggregated, de-identified data",
        "Only aggregated, de-identified data is used for analytics.",
        (
            "Prometheus metrics at `/_clutto/metrics` (their own bearer secret) carry counts only; every "
            "label value comes from a fixed set (plans, roles, command names, route templates, job kinds), "
            "so no user, room, team or address can become a label.",
            "The usage report (`clutto-bridge report usage`, `GET /_clutto/v1/reports/usage`) counts teams "
            "and members per sign-up week, plan and size bucket, and leaves out every cell that describes "
            "fewer than `analytics.k` teams or members, saying how many it left out.",
        ),
        settings=("analytics.k", "analytics.metrics_enabled", "analytics.metrics_secret"),
        enforced_in=("clutto_bridge.metrics", "clutto_bridge.policy.analytics", "clutto_bridge.domain.usage"),
    ),
    Promise(
        "P16",
        "email: only header information",
        "Of email, only header information is kept.",
        (
            "An SMTP listener (off by default) takes mail for team addresses that owners and admins "
            "switch on (`email on`); unknown or switched-off recipients are refused at `RCPT TO`, "
            "oversized mail with 552.",
            "Only the allowlisted headers, decoded, on one line and length-limited, reach the team's "
            "`email` room as a notice; the body and attachments are parsed in memory only and never "
            "written to the homeserver, the database, the log or a file.",
        ),
        settings=(
            "email.enabled",
            "email.hostname",
            "email.port",
            "email.domain",
            "email.max_size_kib",
            "email.headers",
            "email.header_max_length",
        ),
        enforced_in=("clutto_bridge.smtp", "clutto_bridge.domain.email", "clutto_bridge.policy.mail"),
    ),
)

BY_ID: dict[str, Promise] = {p.id: p for p in PROMISES}
