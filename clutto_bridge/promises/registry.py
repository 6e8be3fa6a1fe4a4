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
BEFORE_THE_WRITE = Pending(
    "enforcement before the write (synapse-http-antispam forwards the homeserver's spam-checker "
    "callbacks to the bridge); today the bridge corrects after the fact", 15,
)

PROMISES: tuple[Promise, ...] = (
    Promise(
        "P1", "the team's data belongs to the team and its Customer",
        "Customer Data (group chats, individual chats, pictures, videos, files, edits and deletions) "
        "belongs to the team and is governed by its Customer.",
        (
            "A team is a Matrix space; its group chats are rooms in that space whose join rule admits "
            "only members of the space (`restricted`), so someone outside the team, or removed from it, "
            "cannot join.",
            "Individual chats between members (`dm USER`) are direct rooms the bot creates and records "
            "as the team's.",
            "Every team room is recorded in the bridge's database, so retention, export and purge reach "
            "all of them.",
        ),
        settings=("bridge.default_rooms", "bridge.room_version"),
        enforced_in=("clutto_bridge.teams.service", "clutto_bridge.teams.rooms", "clutto_bridge.matrix.spaces"),
    ),
    Promise(
        "P2", "a profile is first name, last name, designation and photo",
        "A profile holds first name, last name, designation and photo; nothing else is published.",
        (
            "Text is trimmed and validated (length; no control or format characters except the joiners "
            "emoji and scripts need); a photo must be an allowed image type and size, checked on the "
            "homeserver's copy by its content, not its declared type.",
            "The bridge publishes the allowed fields (custom profile fields where the homeserver has "
            "them, otherwise a state event in each team space) and deletes any other custom field.",
            "On a join and on every change of display name or avatar in a team room the bridge compares "
            "them with the profile and, as configured, puts them back, warns, or does nothing; each "
            "reset is recorded and explained to the member.",
        ),
        settings=(
            "policy.profile.allowed", "policy.profile.required", "policy.profile.max_length",
            "policy.profile.photo_types", "policy.profile.photo_max_kib", "policy.profile.display_name",
            "policy.profile.enforce", "policy.reminder_interval",
        ),
        enforced_in=("clutto_bridge.policy.profile", "clutto_bridge.teams.profiles", "clutto_bridge.events"),
        weakened_by=(
            Weakening("policy.profile.enforce", ("warn",),
                      "a display name or avatar that differs from the profile stays published; the member is only told"),
            Weakening("policy.profile.enforce", ("off",),
                      "a display name or avatar that differs from the profile stays published, and nobody is told"),
        ),
        homeserver=(Homeserver(BOT_ADMIN.needs, "a changed display name or avatar cannot be put back"),),
        pending=(BEFORE_THE_WRITE,),
    ),
    Promise(
        "P3", "sign-up collects only email, team name, user name, password",
        "Account and team setup collect only email, team name, user name and password.",
        (
            "`account create USERNAME EMAIL` (and the API) creates the homeserver account through the "
            "admin API; the initial password is told once to whoever created the account and never stored.",
            "Of a new member the bridge keeps only the user ID and the email.",
        ),
        settings=("provisioning.enabled",),
        enforced_in=("clutto_bridge.teams.members", "clutto_bridge.matrix.admin"),
        homeserver=(Homeserver(BOT_ADMIN.needs, "accounts cannot be created or deactivated"),),
        pending=(Pending("the email stored encrypted (field encryption, P12)", 13),),
        built=Built.PARTLY,
    ),
    Promise(
        "P4", "log data only as configured, kept only as long as configured",
        "Log data (IP address, referrer, browser, time, language, cookies) is collected only as "
        "configured and kept only as long as configured.",
        (
            "Today the bridge logs no request details (aiohttp's access log stays at WARNING) and never "
            "logs secrets.",
            "The homeserver keeps its own records: Synapse cannot switch IP logging off, but "
            "`user_ips_max_age` bounds how long it keeps addresses.",
        ),
        homeserver=(Homeserver("the homeserver's `user_ips_max_age` and request logs are as short as the policy says",
                               "the homeserver keeps IP addresses and request logs for its own defaults (28 days)"),),
        pending=(
            Pending("`policy.collection` (IP `full|truncated|hashed|none`, user agent, referrer, language, "
                    "retention of access records) applied to every request the bridge serves; the report will "
                    "name `policy.collection.ip: full` as weakening this promise", 12),
            Pending("`doctor` auditing and fixing the homeserver's `user_ips_max_age`, request logs and "
                    "`redaction_retention_period`", 12),
        ),
        built=Built.NO,
    ),
    Promise(
        "P5", "necessary cookies always; other cookies only with consent",
        "Strictly necessary session cookies always; persistent and analytics cookies only with the "
        "member's consent.",
        ("Today the bridge serves no web pages and sets no cookies.",),
        pending=(Pending("the privacy portal with a cookie registry in the config (`policy.cookies`), only "
                         "necessary cookies before consent, the choice recorded and revocable", 12),),
        built=Built.NO,
    ),
    Promise(
        "P6", "contacts are imported only with the member's permission",
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
        enforced_in=("clutto_bridge.policy.contacts", "clutto_bridge.teams.contacts", "clutto_bridge.commands.people"),
        homeserver=(Homeserver(BOT_ADMIN.needs, "the media of a sent vCard stays on the homeserver"),),
    ),
    Promise(
        "P7", "service notices reach everyone; marketing only those who opted in",
        "Service notices always reach members; marketing reaches only those who opted in.",
        (
            "Notices and marketing are separate channels: notices (policy changes, trial warnings, profile "
            "resets) reach every member in their chat with the bot.",
            "Marketing reaches only members who chose it (`marketing on|off`), checked at the moment of "
            "sending; `POST /_clutto/v1/notices` answers how many were delivered and skipped.",
        ),
        settings=("policy.marketing_default",),
        enforced_in=("clutto_bridge.teams.notices", "clutto_bridge.commands.preferences"),
        weakened_by=(
            Weakening("policy.marketing_default", ("true",),
                      "members who never chose receive marketing: opting out replaces opting in"),
        ),
    ),
    Promise(
        "P8", "members agree to the current policy; changes are announced",
        "Members agree to the current version of the policy, and changes are announced.",
        (
            "Policy texts are versioned Markdown files; a new member is sent the summary, `policy` shows "
            "the text, `accept` records the version and the time.",
            "A new version is announced to every member of every team once; a version marked "
            "`reconsent: true` asks everyone to accept again.",
            "In block mode a member who has not accepted cannot send in team rooms (their power level is "
            "held below the send level) until they accept; in remind mode they are reminded every "
            "`policy.reminder_interval`. The owner, admins and the operator see who accepted at "
            "`GET /_clutto/v1/teams/{id}/consent`.",
        ),
        settings=("policy.version", "policy.consent.texts", "policy.consent.mode", "policy.reminder_interval"),
        enforced_in=("clutto_bridge.policy.consent", "clutto_bridge.teams.consent", "clutto_bridge.teams.onboarding"),
        weakened_by=(
            Weakening("policy.consent.mode", ("remind",),
                      "members who have not accepted the current version can still send in team rooms; they are "
                      "only reminded"),
        ),
        pending=(BEFORE_THE_WRITE,),
    ),
    Promise(
        "P9", "the Customer controls provisioning, roles, integrations, retention, export, ownership",
        "The Customer controls provisioning, permissions, integrations, retention, export and ownership.",
        (
            "Roles (owner, admin, member, guest) are power levels in the space and every team room; a level "
            "changed by hand is put back and recorded.",
            "Only allowed bots and widgets stay in team rooms; others are removed and the removal recorded.",
            "Retention (P11), export with a manifest of SHA-256 sums, legal holds and ownership transfer.",
        ),
        settings=(
            "bridge.power_levels", "policy.integrations.bots", "policy.integrations.widget_url_prefixes",
            "export.directory", "provisioning.enabled", "provisioning.shared_secret",
        ),
        enforced_in=(
            "clutto_bridge.teams.members", "clutto_bridge.teams.power", "clutto_bridge.policy.integrations",
            "clutto_bridge.teams.integrations", "clutto_bridge.jobs.export",
        ),
        pending=(BEFORE_THE_WRITE,),
    ),
    Promise(
        "P10", "after the trial and a grace period, a team's data is purged irreversibly",
        "Data is retained for a set period after the trial ends, then purged irreversibly.",
        (
            "A team starts on the trial plan; the operator sets `paid` (`clutto-bridge plan paid --team ID` "
            "or `PUT /_clutto/v1/teams/{id}/plan`). The owner is warned before the end of the grace period.",
            "A team still on trial is then purged: media deleted, every room deleted with purge through the "
            "admin API, accounts Clutto created for it that belong to no other team deactivated with "
            "erasure, its rows removed. An export can be required first; a legal hold stops the purge.",
        ),
        settings=("policy.trial.length", "policy.trial.grace", "policy.trial.warnings"),
        enforced_in=("clutto_bridge.policy.trial", "clutto_bridge.teams.lifecycle", "clutto_bridge.jobs.team_purge"),
        homeserver=(Homeserver(BOT_ADMIN.needs, "rooms and media cannot be purged from the homeserver"),),
    ),
    Promise(
        "P11", "each team sets how long its messages are kept",
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
            "policy.retention.min", "policy.retention.max", "policy.retention.default",
            "policy.retention.sweep_interval", "policy.retention.batch_size", "policy.retention.purge_slice",
            "policy.retention.redact",
        ),
        enforced_in=("clutto_bridge.policy.retention", "clutto_bridge.teams.retention", "clutto_bridge.jobs.retention_sweep"),
        homeserver=(
            Homeserver(BOT_ADMIN.needs, "sweeps only redact: the originals stay in the homeserver's database"),
            Homeserver("the homeserver's `redaction_retention_period` is no longer than `policy.retention.min`",
                       "the originals of redacted messages stay on the homeserver that long (Synapse: 7d)",
                       checked_with="redaction_retention_period"),
        ),
        weakened_by=(
            Weakening("policy.retention.redact", ("never",),
                      "nothing is redacted: other homeservers keep their copies of expired messages, imported "
                      "history a purge cannot reach stays readable, and edits of expired messages stay"),
        ),
    ),
    Promise(
        "P12", "sensitive data is encrypted in our database",
        "Sensitive data is encrypted in our database.",
        ("Today account emails and imported contacts are plain text; protect the bridge's database.",),
        pending=(Pending("AES-256-GCM on sensitive columns with key ids for rotation; `keys init|rotate|status|retire`", 13),),
        built=Built.NO,
    ),
    Promise(
        "P13", "web traffic uses HTTPS and carries our signature",
        "Web traffic uses HTTPS and carries our digital signature.",
        ("Today the bridge speaks plain HTTP and listens on 127.0.0.1 by default (`appservice.hostname`); put "
         "it behind a TLS-terminating proxy when anything but the homeserver on the same host reaches it.",),
        pending=(Pending("TLS with HSTS; Ed25519 signatures (RFC 9421) on API responses and webhooks", 13),),
        built=Built.NO,
    ),
    Promise(
        "P14", "what is shared or destroyed is recorded",
        "Every disclosure of data and every destructive action is recorded.",
        ("The audit log records every destructive action and every enforcement with time, actor, target and "
         "counts: redactions, purges, team deletions and purges, holds, exports, removals, role and power "
         "level changes, profile resets, integration removals.",),
        enforced_in=("clutto_bridge.teams.audit", "clutto_bridge.db.audit"),
        pending=(Pending("a record of every disclosure, and a hash-chained, signed audit log verifiable offline "
                         "(`audit verify|export`)", 13),),
        built=Built.PARTLY,
    ),
    Promise(
        "P15", "analytics only on aggregated, de-identified data",
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
        enforced_in=("clutto_bridge.metrics", "clutto_bridge.policy.analytics", "clutto_bridge.teams.usage"),
    ),
    Promise(
        "P16", "email: only header information",
        "Of email, only header information is kept.",
        (
            "An SMTP listener (off by default) takes mail for team addresses that owners and admins "
            "switch on (`email on`); unknown or switched-off recipients are refused at `RCPT TO`, "
            "oversized mail with 552.",
            "Only the allowlisted headers, decoded, on one line and length-limited, reach the team's "
            "`email` room as a notice; the body and attachments are parsed in memory only and never "
            "written to the homeserver, the database, the log or a file.",
        ),
        settings=("email.enabled", "email.hostname", "email.port", "email.domain", "email.max_size_kib",
                  "email.headers", "email.header_max_length"),
        enforced_in=("clutto_bridge.smtp", "clutto_bridge.teams.email", "clutto_bridge.policy.mail"),
    ),
)

BY_ID: dict[str, Promise] = {p.id: p for p in PROMISES}
