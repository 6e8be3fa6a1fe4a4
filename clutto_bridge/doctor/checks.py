"""The homeserver's own settings against the bridge's policy: one small pure check each.

A check reads the parsed homeserver.yaml and its log config (``Facts``) and what the
bridge's config requires (``Requirements``), and returns a ``Result``: what it found, what
is required, why, and the changes that would fix it (applied by ``doctor/fix.py`` only with
``--fix``). A later feature adds its check to ``CHECKS`` and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from clutto_bridge.durations import format_duration
from clutto_bridge.policy.collection import is_loopback

# Synapse's defaults for what we check (its config documentation).
USER_IPS_MAX_AGE = "28d"
REDACTION_RETENTION = "7d"
DEFAULT_BIND = ("::", "0.0.0.0")
ACCESS_LOGGER = "synapse.access"
QUIET = 30  # logging.WARNING: Synapse's access lines are INFO
LEVELS = {"CRITICAL": 50, "FATAL": 50, "ERROR": 40, "WARNING": 30, "WARN": 30, "INFO": 20, "DEBUG": 10, "NOTSET": 0}
HOMESERVER, LOG_CONFIG = "homeserver.yaml", "log config"
# What the bot's E2EE device needs of Synapse (1.16x): to-device messages (MSC2409) and
# one-time-key counts and device lists (MSC3202) in appservice transactions. The registration
# side (receive_ephemeral, org.matrix.msc3202, io.element.msc4190) is written by
# generate-registration; MSC4190 needs no homeserver switch.
E2EE_EXPERIMENTAL_FEATURES = {"msc2409_to_device_messages_enabled": True, "msc3202_transaction_extensions": True}
E2EE_REGISTRATION_FLAGS = ("receive_ephemeral", "org.matrix.msc3202", "io.element.msc4190")


class Status(str, Enum):
    PASS = "pass"
    FAIL = "FAIL"
    WARN = "warn"
    UNCHECKED = "not checked"


@dataclass(frozen=True)
class Change:
    """One edit: set ``path`` in ``file`` to ``value``, or append ``value`` to the list there."""

    file: str  # HOMESERVER or LOG_CONFIG
    path: tuple[str | int, ...]
    value: Any
    append: bool = False
    why: str = ""

    def describe(self) -> str:
        where = ".".join(str(p) for p in self.path)
        return f"{self.file}: {where} " + (f"+= {self.value!r}" if self.append else f"= {_yaml(self.value)}")


@dataclass(frozen=True)
class Result:
    check: str
    status: Status
    found: str
    required: str
    why: str
    fixes: tuple[Change, ...] = ()


@dataclass(frozen=True)
class Requirements:
    """What the bridge's config asks of the homeserver."""

    ip_mode: str  # policy.collection.ip
    collection_retention_s: int  # policy.collection.retention
    shortest_lifetime_s: int  # policy.retention.min
    longest_lifetime_s: int  # policy.retention.max
    as_token: str
    registration_file: str | None = None  # --registration: what --fix may add to app_service_config_files
    bridge_plain_http_on: str | None = None  # appservice.hostname when it is not loopback and TLS is off
    # The enforcement module's check (web/antispam.antispam_findings with the bridge's settings):
    # homeserver.yaml in, (severity, message) pairs out; None while antispam.enabled is off.
    module_findings: Callable[[Mapping[str, Any]], list[tuple[str, str]]] | None = None


@dataclass(frozen=True)
class Facts:
    homeserver: Mapping[str, Any]
    log_config: Mapping[str, Any] | None = None  # None: no log_config, or unreadable (see log_problem)
    log_problem: str | None = None
    registrations: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)  # listed file -> parsed
    bot_admin: bool | None = None  # None: the homeserver could not be asked
    bot_admin_detail: str = ""


Check = Callable[[Facts, Requirements], Result]


# --- Synapse durations ------------------------------------------------------------------------

_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000, "y": 365 * 86_400_000}


def synapse_ms(value: Any) -> int | None:
    """Milliseconds of a Synapse duration (a number is ms; a string may end in s, m, h, d, w, y);
    None when it cannot be read."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        unit = _UNIT_MS.get(text[-1])
        number = text[:-1] if unit else text
        if number.isdigit():
            return int(number) * (unit or 1)
    return None


def synapse_duration(seconds: int) -> str | int:
    """A duration as Synapse reads it, in one unit (Synapse does not read ``1d12h``)."""
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_MS[unit] // 1000
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return seconds * 1000


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


# --- the checks -------------------------------------------------------------------------------


def _at_most(key: str, default: str, limit_s: int, limit_key: str, why: str, facts: Facts) -> Result:
    raw = facts.homeserver.get(key, default)
    found = _yaml(raw) + (" (Synapse's default)" if key not in facts.homeserver else "")
    required = f"<= {format_duration(limit_s)} ({limit_key})"
    ms = synapse_ms(raw)
    ok = ms is not None and ms <= limit_s * 1000
    fix = () if ok else (Change(HOMESERVER, (key,), synapse_duration(limit_s), why=why),)
    return Result(key, Status.PASS if ok else Status.FAIL, found, required, why, fix)


def user_ips_max_age(facts: Facts, req: Requirements) -> Result:
    return _at_most(
        "user_ips_max_age",
        USER_IPS_MAX_AGE,
        req.collection_retention_s,
        "policy.collection.retention",
        "Synapse keeps every device's IP address and user agent this long and cannot switch it off",
        facts,
    )


def redaction_retention_period(facts: Facts, req: Requirements) -> Result:
    return _at_most(
        "redaction_retention_period",
        REDACTION_RETENTION,
        req.shortest_lifetime_s,
        "policy.retention.min",
        "the original of a deleted or expired message stays in Synapse's database this long",
        facts,
    )


def _flag(key: str, default: bool, required: bool, why: str) -> Check:
    def check(facts: Facts, req: Requirements) -> Result:
        value = facts.homeserver.get(key, default)
        found = _yaml(value) + ("" if key in facts.homeserver else " (Synapse's default)")
        ok = bool(value) is required
        fix = () if ok else (Change(HOMESERVER, (key,), required, why=why),)
        return Result(key, Status.PASS if ok else Status.FAIL, found, _yaml(required), why, fix)

    check.__name__ = key
    return check


url_preview_enabled = _flag(
    "url_preview_enabled",
    False,
    False,
    "previews fetch every link members post, from the homeserver, and keep the page",
)
report_stats = _flag("report_stats", False, False, "usage statistics leave for matrix.org")
include_profile_data_on_invite = _flag(
    "include_profile_data_on_invite",
    True,
    False,
    "an invite would show the profile to people outside the team",
)
limit_profile_requests = _flag(
    "limit_profile_requests_to_users_who_share_rooms",
    False,
    True,
    "profiles are visible only to teammates (P2)",
)
require_auth_for_profile_requests = _flag(
    "require_auth_for_profile_requests",
    False,
    True,
    "profiles are not visible to anyone without an account (P2)",
)


def access_log(facts: Facts, req: Requirements) -> Result:
    """Synapse's request log (``synapse.access.*``, INFO) writes every client's full address."""
    why = "Synapse's request log writes each client's full IP address and user agent"
    if req.ip_mode == "full":
        return Result("request log", Status.PASS, "not checked", "any (policy.collection.ip: full)", why)
    required = f"{ACCESS_LOGGER} at WARNING or above (policy.collection.ip: {req.ip_mode})"
    if facts.log_config is None:
        found = facts.log_problem or "no log_config: Synapse logs requests at INFO"
        return Result("request log", Status.FAIL, found, required, why + "; set log_config to a logging config file")
    loggers = facts.log_config.get("loggers") or {}
    level = _effective_level(facts.log_config, ACCESS_LOGGER)
    louder = [name for name, cfg in loggers.items() if str(name).startswith(ACCESS_LOGGER + ".") and _below(cfg, QUIET)]
    found = f"{ACCESS_LOGGER} at {_level_name(level)}" + (f"; {', '.join(louder)} lower" if louder else "")
    if level >= QUIET and not louder:
        return Result("request log", Status.PASS, found, required, why)
    fixes = [Change(LOG_CONFIG, ("loggers", ACCESS_LOGGER, "level"), "WARNING", why=why)]
    fixes += [Change(LOG_CONFIG, ("loggers", name, "level"), "WARNING", why=why) for name in louder]
    return Result("request log", Status.FAIL, found, required, why, tuple(fixes))


def _below(cfg: Any, level: int) -> bool:
    """Whether a logger's config sets a level below ``level`` (more verbose)."""
    found = _level(cfg)
    return found is not None and found < level


def _level(cfg: Any) -> int | None:
    if not isinstance(cfg, Mapping) or "level" not in cfg:
        return None
    raw = cfg["level"]
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    return LEVELS.get(str(raw).upper())


def _effective_level(log_config: Mapping[str, Any], name: str) -> int:
    """The level Python's logging gives ``name`` under this dictConfig (nearest configured ancestor)."""
    loggers = log_config.get("loggers") or {}
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        level = _level(loggers.get(".".join(parts[:end])))
        if level:  # NOTSET (0) defers to the parent, as in logging
            return level
    return _level(log_config.get("root")) or LEVELS["WARNING"]


def _level_name(level: int) -> str:
    return next((name for name, value in LEVELS.items() if value == level), str(level))


def media_retention(facts: Facts, req: Requirements) -> Result:
    why = "cached copies of other servers' media are kept until this lifetime ends"
    media = facts.homeserver.get("media_retention") or {}
    raw = media.get("remote_media_lifetime") if isinstance(media, Mapping) else None
    ms = synapse_ms(raw)
    required = f"remote_media_lifetime <= {format_duration(req.longest_lifetime_s)} (policy.retention.max)"
    found = f"remote_media_lifetime: {_yaml(raw)}" + (" (kept forever)" if raw is None else "")
    if ms is not None and ms <= req.longest_lifetime_s * 1000:
        return Result("media_retention", Status.PASS, found, required, why)
    fix = Change(
        HOMESERVER, ("media_retention", "remote_media_lifetime"), synapse_duration(req.longest_lifetime_s), why=why
    )
    return Result("media_retention", Status.FAIL, found, required, why, (fix,))


def registration_loaded(facts: Facts, req: Requirements) -> Result:
    why = "without the registration the homeserver does not talk to the bridge"
    files = facts.homeserver.get("app_service_config_files") or []
    ours = _our_registrations(facts, req)
    found = ", ".join(str(f) for f in files) or "none listed"
    required = "a file with the bridge's as_token in app_service_config_files"
    if ours:
        return Result("app_service_config_files", Status.PASS, found, required, why)
    fixes: tuple[Change, ...] = ()
    if req.registration_file:
        fixes = (Change(HOMESERVER, ("app_service_config_files",), req.registration_file, append=True, why=why),)
    else:
        why += "; give --registration registration.yaml for --fix to add it"
    return Result("app_service_config_files", Status.FAIL, found, required, why, fixes)


def _our_registrations(facts: Facts, req: Requirements) -> list[Mapping[str, Any]]:
    return [
        data
        for data in facts.registrations.values()
        if isinstance(data, Mapping) and data.get("as_token") == req.as_token
    ]


def e2ee_transactions(facts: Facts, req: Requirements) -> Result:
    why = "the bot's E2EE device receives room keys and key counts only in appservice transactions"
    features = facts.homeserver.get("experimental_features")
    features = features if isinstance(features, Mapping) else {}
    missing = [key for key in E2EE_EXPERIMENTAL_FEATURES if features.get(key) is not True]
    required = "experimental_features: " + ", ".join(f"{key}: true" for key in E2EE_EXPERIMENTAL_FEATURES)
    if not missing:
        return Result("E2EE in transactions", Status.PASS, "enabled", required, why)
    fixes = tuple(Change(HOMESERVER, ("experimental_features", key), True, why=why) for key in missing)
    return Result("E2EE in transactions", Status.FAIL, "off: " + ", ".join(missing), required, why, fixes)


def e2ee_registration(facts: Facts, req: Requirements) -> Result:
    why = "the appservice manages the bot's device (MSC4190) and asks for to-device messages and key counts"
    required = ", ".join(f"{flag}: true" for flag in E2EE_REGISTRATION_FLAGS)
    ours = _our_registrations(facts, req)
    if not ours:
        return Result("E2EE registration flags", Status.UNCHECKED, "the registration is not loaded", required, why)
    missing = [flag for flag in E2EE_REGISTRATION_FLAGS if ours[0].get(flag) is not True]
    if not missing:
        return Result("E2EE registration flags", Status.PASS, "set", required, why)
    return Result(
        "E2EE registration flags",
        Status.FAIL,
        "missing: " + ", ".join(missing),
        required,
        why + "; run `clutto-bridge generate-registration` again (it keeps the tokens)",
    )


def bot_is_admin(facts: Facts, req: Requirements) -> Result:
    why = "retention purges, account removal and profile enforcement use the Synapse admin API"
    required = "admin: true"
    if facts.bot_admin is None:
        return Result(
            "bot is a server admin",
            Status.UNCHECKED,
            facts.bot_admin_detail or "homeserver not reachable",
            required,
            why,
        )
    if facts.bot_admin:
        return Result("bot is a server admin", Status.PASS, "admin: true", required, why)
    found = "admin: false" + (f" ({facts.bot_admin_detail})" if facts.bot_admin_detail else "")
    return Result(
        "bot is a server admin",
        Status.FAIL,
        found,
        required,
        why + '; PUT /_synapse/admin/v2/users/<bot> {"admin": true} with an admin\'s token',
    )


def _http_listeners(facts: Facts) -> list[tuple[int, Mapping[str, Any]]]:
    listeners = facts.homeserver.get("listeners") or []
    return [(i, item) for i, item in enumerate(listeners) if isinstance(item, Mapping) and item.get("type") == "http"]


def _names(listener: Mapping[str, Any]) -> set[str]:
    return {str(n) for r in listener.get("resources") or [] if isinstance(r, Mapping) for n in r.get("names") or []}


def openid_listener(facts: Facts, req: Requirements) -> Result:
    why = "members reach the provisioning API with OpenID tokens, which the bridge verifies there"
    served = [_names(listener) for _, listener in _http_listeners(facts)]
    found = "; ".join(", ".join(sorted(names)) for names in served) or "no http listener"
    required = "an http listener with the openid (or federation) resource"
    if any(names & {"openid", "federation"} for names in served):
        return Result("openid listener", Status.PASS, found, required, why)
    fixes: tuple[Change, ...] = ()
    for index, listener in _http_listeners(facts):
        resources = listener.get("resources") or []
        if "client" in _names(listener) and resources and isinstance(resources[0], Mapping):
            fixes = (Change(HOMESERVER, ("listeners", index, "resources", 0, "names"), "openid", append=True, why=why),)
            break
    return Result("openid listener", Status.FAIL, found, required, why, fixes)


def client_listener_tls(facts: Facts, req: Requirements) -> Result:
    why = "plain HTTP on a reachable address carries passwords and tokens unencrypted; put TLS in front"
    exposed = []
    for _, listener in _http_listeners(facts):
        if "client" not in _names(listener) or listener.get("tls"):
            continue
        binds = listener.get("bind_addresses") or (
            [listener["bind_address"]] if listener.get("bind_address") else DEFAULT_BIND
        )
        exposed += [str(a) for a in binds if not is_loopback(str(a))]
    required = "TLS, or bound to loopback behind a TLS proxy"
    if exposed:
        return Result("client listener", Status.WARN, f"plain HTTP on {', '.join(exposed)}", required, why)
    return Result("client listener", Status.PASS, "TLS or loopback only", required, why)


def bridge_listener_tls(facts: Facts, req: Requirements) -> Result:
    why = "the homeserver's tokens, members' data and the portal's session cookie cross this port"
    required = "appservice.tls.cert/key, or appservice.hostname on loopback behind a TLS proxy"
    if req.bridge_plain_http_on:
        return Result("bridge listener", Status.WARN, f"plain HTTP on {req.bridge_plain_http_on}", required, why)
    return Result("bridge listener", Status.PASS, "TLS or loopback only", required, why)


def enforcement_module(facts: Facts, req: Requirements) -> Result:
    why = "Synapse asks the bridge before it stores a join, an invite, a state event or a message"
    required = "modules: synapse_http_antispam with the bridge's URL and antispam.shared_secret"
    if req.module_findings is None:
        return Result("enforcement module", Status.PASS, "antispam.enabled is off", "nothing", why)
    findings = req.module_findings(facts.homeserver)
    if not findings:
        return Result("enforcement module", Status.PASS, "configured for this bridge", required, why)
    # Absent is a warning, not a failure: the bridge still enforces after the fact, and only the
    # operator can install the module into Synapse's environment (so --fix never adds it).
    status = Status.FAIL if any(severity == "error" for severity, _ in findings) else Status.WARN
    return Result("enforcement module", status, " ".join(message for _, message in findings), required, why)


def hung_bridge(facts: Facts, req: Requirements) -> Result:
    """The module has no timeout of its own (issue 23): what restarts a hung bridge is the
    operator's service manager, which homeserver.yaml does not show."""
    why = (
        "synapse-http-antispam has no timeout: while the bridge hangs, every message, join and invite on the "
        "homeserver waits for Synapse's HTTP timeout (60 s). The bridge pings a systemd watchdog and answers "
        "/_clutto/health only while its event loop and database answer, so a watchdog restarts it"
    )
    required = (
        "systemd Type=notify, WatchdogSec and Restart=on-failure (docs/clutto-bridge.service), or the "
        "image's HEALTHCHECK (clutto-bridge health) with something that restarts an unhealthy container"
    )
    if req.module_findings is None:
        return Result(
            "hung bridge", Status.PASS, "antispam.enabled is off: Synapse never waits on the bridge", required, why
        )
    if any(severity == "absent" for severity, _ in req.module_findings(facts.homeserver)):
        return Result(
            "hung bridge", Status.PASS, "the module is not loaded: Synapse never waits on the bridge", required, why
        )
    return Result(
        "hung bridge", Status.UNCHECKED, "how the bridge is supervised (not in homeserver.yaml)", required, why
    )


CHECKS: list[Check] = [
    user_ips_max_age,
    access_log,
    redaction_retention_period,
    media_retention,
    url_preview_enabled,
    report_stats,
    include_profile_data_on_invite,
    limit_profile_requests,
    require_auth_for_profile_requests,
    registration_loaded,
    e2ee_registration,
    e2ee_transactions,
    bot_is_admin,
    openid_listener,
    client_listener_tls,
    bridge_listener_tls,
    enforcement_module,
    hung_bridge,
]


def run_checks(facts: Facts, req: Requirements) -> list[Result]:
    return [check(facts, req) for check in CHECKS]


def failed(results: list[Result]) -> bool:
    return any(r.status is Status.FAIL for r in results)
