"""The compliance report: each promise against one configuration, as kept, partly kept,
weakened by a named setting, not applicable, or not yet enforced.

Pure: it reads the validated ``Settings`` and, when the operator gives it, the homeserver's
parsed config; ``cli.py`` and the provisioning API print or serve the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import BaseModel
from yarl import URL

from clutto_bridge.config import Settings
from clutto_bridge.durations import DurationError, format_duration, parse_duration
from clutto_bridge.policy.collection import is_loopback
from clutto_bridge.promises.registry import PROMISES, Built, Pending, Promise

# Synapse's defaults for the settings we read from homeserver.yaml.
SYNAPSE_REDACTION_RETENTION = 7 * 86400
SYNAPSE_USER_IPS_MAX_AGE = 28 * 86400


class State(str, Enum):
    KEPT = "kept"
    PARTLY_KEPT = "partly kept"  # what is built is kept; the rest is pending (see ``pending``)
    WEAKENED = "weakened"  # a setting (named) keeps the bridge from keeping it fully
    NOT_APPLICABLE = "not applicable"  # the feature it is about is switched off here
    NOT_ENFORCED = "not yet enforced"  # nothing of the mechanism exists yet


@dataclass(frozen=True)
class Finding:
    """A configured value that weakens a promise."""

    key: str  # dotted config key; homeserver.yaml keys start with ``homeserver.yaml:``
    value: str
    effect: str


@dataclass(frozen=True)
class Verdict:
    promise: Promise
    state: State
    weakened_by: tuple[Finding, ...]
    homeserver: tuple[str, ...]  # what depends on the homeserver (or the declared proxy) and was not checked
    pending: tuple[Pending, ...]


def check(settings: Settings, homeserver_config: Mapping[str, Any] | None = None) -> list[Verdict]:
    """Every promise against ``settings`` (and ``homeserver_config``, the parsed homeserver.yaml)."""
    return [_verdict(p, settings, homeserver_config) for p in PROMISES]


def weakened(verdicts: list[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if v.state is State.WEAKENED]


def configured(settings: Settings, key: str) -> str:
    """A dotted key's value as the operator writes it in config.yaml (``remind``, ``true``, ``7d``)."""
    value: Any = settings
    for part in key.split("."):
        value = getattr(value, part)
    return yaml_text(value)


def yaml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {yaml_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, frozenset, set)):
        return "[" + ", ".join(yaml_text(v) for v in value) + "]"
    return str(value)


def _verdict(promise: Promise, settings: Settings, hs: Mapping[str, Any] | None) -> Verdict:
    if promise.built is Built.NO:
        return Verdict(promise, State.NOT_ENFORCED, (), (), promise.pending)
    findings = [
        Finding(w.key, value, w.effect)
        for w in promise.weakened_by
        if (value := configured(settings, w.key)) in w.values
    ]
    unchecked = [
        f"{h.needs}; otherwise {h.otherwise}" for h in promise.homeserver if hs is None or h.checked_with is None
    ]
    if hs is not None:
        findings += _homeserver_findings(promise, settings, hs)
    if promise.id == "P13":
        listener, proxy = _listener_findings(settings)
        findings += listener
        unchecked += proxy
    if findings:
        state = State.WEAKENED
    elif promise.built is Built.PARTLY:
        state = State.PARTLY_KEPT
    else:
        state = State.KEPT
    return Verdict(promise, state, tuple(findings), tuple(unchecked), promise.pending)


def _listener_findings(settings: Settings) -> tuple[list[Finding], list[str]]:
    """P13 judged on the listener the bridge runs (``appservice.hostname``/``tls``): HTTPS with
    TLS; on loopback behind a proxy the operator declares (``policy.collection.trusted_proxies``)
    it depends on that proxy; plain HTTP otherwise. Returns findings and what depends on the proxy."""
    a = settings.appservice
    findings: list[Finding] = []
    depends: list[str] = []
    if a.tls.enabled:
        pass
    elif not is_loopback(a.hostname):
        findings.append(
            Finding(
                "appservice.hostname",
                a.hostname,
                "the bridge speaks plain HTTP on an address other machines reach: tokens, members' data and the "
                "portal's session cookie cross the network unencrypted (set appservice.tls.cert and appservice.tls.key)",
            )
        )
    elif not settings.collection.trusted_proxies:
        findings.append(
            Finding(
                "policy.collection.trusted_proxies",
                "[]",
                "the bridge speaks plain HTTP on loopback and no proxy in front of it is declared, so nothing here "
                "gives browsers and API clients HTTPS (set appservice.tls, or declare the TLS proxy)",
            )
        )
    else:
        depends.append(
            "the proxy declared in policy.collection.trusted_proxies serves HTTPS to browsers and API clients "
            "(the bridge behind it speaks plain HTTP on loopback); otherwise they reach it unencrypted"
        )
    if settings.portal.enabled:
        url = URL(settings.portal.base_url(a.address))
        if url.scheme == "http" and not is_loopback(url.host or ""):
            findings.append(
                Finding(
                    "portal.public_url",
                    str(url),
                    "members' browsers are sent to the portal over plain HTTP, session cookie included",
                )
            )
    return findings, depends


def _homeserver_findings(promise: Promise, settings: Settings, hs: Mapping[str, Any]) -> list[Finding]:
    """What the homeserver's own config does to a promise: P4's IP retention, P11's redaction
    retention (``clutto-bridge doctor`` checks these and more)."""
    if promise.id == "P4":
        return _user_ips_findings(settings, hs)
    if promise.id == "P12":
        return _e2ee_findings(settings, hs)
    if promise.id != "P11":
        return []
    key = "homeserver.yaml:redaction_retention_period"
    raw = hs.get("redaction_retention_period", format_duration(SYNAPSE_REDACTION_RETENTION))
    shortest = settings.retention.min
    if raw is None:
        return [Finding(key, "null", "the originals of redacted messages are kept on the homeserver forever")]
    try:
        kept = _synapse_duration(raw)
    except DurationError:
        return [Finding(key, str(raw), "cannot be read, so how long originals of redacted messages stay is unknown")]
    if kept > shortest:
        return [
            Finding(
                key,
                str(raw),
                f"the originals of redacted messages stay on the homeserver longer than the shortest team lifetime "
                f"(policy.retention.min: {format_duration(shortest)})",
            )
        ]
    return []


# What Synapse needs to hand the bot's E2EE device its keys (``doctor`` checks and fixes the same).
E2EE_FEATURES = ("msc2409_to_device_messages_enabled", "msc3202_transaction_extensions")


def _e2ee_findings(settings: Settings, hs: Mapping[str, Any]) -> list[Finding]:
    """Without the experimental features the bot gets no room keys: encrypted rooms stay unread."""
    if settings.policy.encryption == "off":
        return []
    features = hs.get("experimental_features") or {}
    missing = [f for f in E2EE_FEATURES if not (isinstance(features, Mapping) and features.get(f) is True)]
    if not missing:
        return []
    return [
        Finding(
            "homeserver.yaml:experimental_features",
            "missing " + ", ".join(missing),
            "the bot gets no room keys, so it cannot read encrypted rooms and members' commands there go "
            "unanswered (run `clutto-bridge doctor --fix`)",
        )
    ]


def _user_ips_findings(settings: Settings, hs: Mapping[str, Any]) -> list[Finding]:
    key = "homeserver.yaml:user_ips_max_age"
    raw = hs.get("user_ips_max_age", format_duration(SYNAPSE_USER_IPS_MAX_AGE))
    limit = settings.collection.retention
    if raw is None:
        return [Finding(key, "null", "the homeserver keeps every device's IP address forever")]
    try:
        kept = _synapse_duration(raw)
    except DurationError:
        return [Finding(key, str(raw), "cannot be read, so how long the homeserver keeps IP addresses is unknown")]
    if kept > limit:
        return [
            Finding(
                key,
                str(raw),
                f"the homeserver keeps IP addresses longer than policy.collection.retention ({format_duration(limit)})",
            )
        ]
    return []


def _synapse_duration(raw: Any) -> int:
    """Seconds of a Synapse duration: a number is milliseconds; a string may also use ``y``."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw // 1000
    text = str(raw).strip().lower()
    if text.endswith("y") and text[:-1].isdigit():
        return int(text[:-1]) * 365 * 86400
    return parse_duration(text)


def report_lines(verdicts: list[Verdict], homeserver_checked: bool = False) -> list[str]:
    """The report as the CLI prints it: one line per promise, then what weakens or is missing."""
    lines = []
    for v in verdicts:
        lines.append(f"{v.promise.id:<4} {v.state.value:<17} {v.promise.title}")
        lines += [f"       weakened by {f.key}: {f.value}: {f.effect}" for f in v.weakened_by]
        lines += [f"       depends on the homeserver/proxy: {h}" for h in v.homeserver]
        lines += [f"       not yet enforced: {p.what} (issue {p.issue})" for p in v.pending]
    counts = {s: sum(v.state is s for v in verdicts) for s in State}
    lines.append("")
    lines.append(", ".join(f"{n} {s.value}" for s, n in counts.items() if n))
    if not homeserver_checked:
        lines.append("The homeserver's own settings were not checked: add --homeserver-config homeserver.yaml.")
    return lines
