"""Configuration: load and validate into typed settings, fill in tokens, upgrade old files.

The example config shipped in the package is both the schema and the manual: every key
is defined and commented there. The policy texts are read here (``policy_files``), so
``policy/`` stays free of I/O. Loading validates every key and turns problems into a
``ConfigError`` that names the key, so the CLI can print one line and exit with code 2.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from mautrix.util.config import BaseFileConfig, ConfigUpdateHelper
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from yarl import URL

from clutto_bridge.config_upgrade import add_missing_keys, round_trip_yaml
from clutto_bridge.durations import DurationError, parse_duration
from clutto_bridge.matrix.ids import USER_ID
from clutto_bridge import policy_files
from clutto_bridge.policy.consent import CONSENT_MODES, VERSION, PolicyText
from clutto_bridge.policy.profile import ENFORCE_MODES, FIELDS, ProfileRules, template_fields

EXAMPLE_CONFIG = Path(__file__).with_name("example-config.yaml")
GENERATE = "generate"
ROLES = ("owner", "admin", "member", "guest")


class ConfigError(Exception):
    """A config problem, always tied to the key (dotted path) it is about."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


# --- typed settings -------------------------------------------------------------------


@dataclass(frozen=True)
class HomeserverSettings:
    address: str
    domain: str
    verify_ssl: bool


@dataclass(frozen=True)
class AppserviceSettings:
    address: str
    hostname: str
    port: int
    database: str
    database_opts: dict[str, int]
    id: str
    bot_username: str
    bot_displayname: str
    as_token: str
    hs_token: str
    transaction_memory: int


@dataclass(frozen=True)
class BridgeSettings:
    command_prefix: str
    room_version: str
    default_rooms: tuple[str, ...]
    team_name_max_length: int
    power_levels: dict[str, int]


@dataclass(frozen=True)
class TrialSettings:
    length: int
    grace: int
    warnings: tuple[int, ...]


@dataclass(frozen=True)
class RetentionSettings:
    min: int
    max: int
    default: int
    sweep_interval: int
    batch_size: int
    purge_slice: int


@dataclass(frozen=True)
class JobSettings:
    poll_interval: int
    lease: int
    max_attempts: int
    retry_backoff: int
    homeserver_rate: int


@dataclass(frozen=True)
class ExportSettings:
    directory: str


@dataclass(frozen=True)
class IntegrationSettings:
    bots: tuple[str, ...]
    widget_url_prefixes: tuple[str, ...]


@dataclass(frozen=True)
class ProvisioningSettings:
    enabled: bool
    shared_secret: str


@dataclass(frozen=True)
class LoggingSettings:
    level: str
    file: str


@dataclass(frozen=True)
class ConsentSettings:
    version: str
    mode: str
    texts: dict[str, PolicyText]

    @property
    def current(self) -> PolicyText:
        return self.texts[self.version]


@dataclass(frozen=True)
class Settings:
    homeserver: HomeserverSettings
    appservice: AppserviceSettings
    bridge: BridgeSettings
    trial: TrialSettings
    retention: RetentionSettings
    integrations: IntegrationSettings
    marketing_default: bool
    consent: ConsentSettings
    profile: ProfileRules
    reminder_interval: int
    jobs: JobSettings
    export: ExportSettings
    provisioning: ProvisioningSettings
    logging: LoggingSettings

    @property
    def bot_mxid(self) -> str:
        return f"@{self.appservice.bot_username}:{self.homeserver.domain}"


# --- value checks ------------------------------------------------------------------------

Check = Callable[[Any], Any]


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, got {value!r}")
    if any(ord(c) < 32 for c in value):
        raise ValueError("must not contain control characters")
    return value.strip()


def _optional_string(value: Any) -> str:
    if value is None or value == "":
        return ""
    return _string(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _integer(low: int, high: int) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be a whole number from {low} to {high}, got {value!r}")
        return value

    return check


def _http_url(value: Any) -> str:
    text = _string(value)
    url = URL(text)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"must be an http:// or https:// URL, got {text!r}")
    return text.rstrip("/")


def _database_url(value: Any) -> str:
    text = _string(value)
    scheme = text.split(":", 1)[0]
    if scheme in ("sqlite", "sqlite3"):
        if not URL(text).path:
            raise ValueError("sqlite URL needs a file, for example sqlite:clutto.db")
    elif scheme in ("postgres", "postgresql"):
        if not text.startswith(f"{scheme}://"):
            raise ValueError("write PostgreSQL as postgres://user:password@host:port/database")
    else:
        raise ValueError(f"must start with sqlite: or postgres://, got {text!r}")
    return text


def _duration(value: Any) -> int:
    try:
        seconds = parse_duration(value)
    except DurationError as e:
        raise ValueError(str(e)) from None
    if seconds <= 0:
        raise ValueError("must be longer than zero")
    return seconds


def _matching(pattern: str | re.Pattern, what: str) -> Check:
    compiled = re.compile(pattern)

    def check(value: Any) -> str:
        text = _string(value)
        if not compiled.fullmatch(text):
            raise ValueError(f"must be {what}, got {text!r}")
        return text

    return check


_localpart = _matching(r"[a-z0-9._=\-/]+", "a Matrix user name (a-z, 0-9, ._=-/)")
_server_name = _matching(r"[A-Za-z0-9.\-\[\]:]+", "a server name like example.com")


def _token(value: Any) -> str:
    text = _string(value)
    if text != GENERATE and len(text) < 16:
        raise ValueError("must be at least 16 characters (or 'generate')")
    return text


def _room_version(value: Any) -> str:
    text = str(value).strip() if isinstance(value, (str, int)) else ""
    if not text.isdigit() or not 8 <= int(text) <= 11:
        raise ValueError(f"must be a room version from 8 to 11 (restricted joins), got {value!r}")
    return text


def _room_names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError("must be a list of room names")
    names = tuple(_string(v) for v in value)
    if len({n.lower() for n in names}) != len(names):
        raise ValueError("room names must be unique")
    return names


def _power_levels(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ValueError(f"must map each of {', '.join(ROLES)} to a power level")
    unknown = set(value) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role {sorted(unknown)[0]!r}; roles are {', '.join(ROLES)}")
    levels = {}
    for role in ROLES:
        if role not in value:
            raise ValueError(f"missing the power level of role {role!r}")
        levels[role] = _integer(0, 100)(value[role])
    if levels["owner"] != 100:
        raise ValueError("owner must be 100, the highest power level")
    if not levels["owner"] > levels["admin"] >= levels["member"] >= levels["guest"]:
        raise ValueError("levels must satisfy owner > admin >= member >= guest")
    return levels


def _pool(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ValueError("must be a map with min_size and max_size")
    low = _integer(1, 100)(value.get("min_size"))
    high = _integer(1, 100)(value.get("max_size"))
    if low > high:
        raise ValueError("min_size must not be larger than max_size")
    return {"min_size": low, "max_size": high}


_user_id = _matching(USER_ID, "a Matrix user ID like @bot:example.com")


def _widget_prefix(value: Any) -> str:
    text = _string(value)
    url = URL(text)
    if url.scheme != "https" or not url.host:
        raise ValueError(f"{text!r} is not an https:// URL prefix")
    return text


def _list_of(value: Any, item: Check) -> tuple:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError("must be a list")
    return tuple(item(v) for v in value)


def _log_level(value: Any) -> str:
    text = _string(value).upper()
    if text not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"must be DEBUG, INFO, WARNING or ERROR, got {value!r}")
    return text


def _command_prefix(value: Any) -> str:
    text = _string(value)
    if " " in text:
        raise ValueError("must be one word, for example !clutto")
    return text


def _one_of(choices: tuple[str, ...]) -> Check:
    def check(value: Any) -> str:
        text = _string(value).lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return text

    return check


def _policy_version(value: Any) -> str:
    if isinstance(value, float):
        raise ValueError(f"write the version in quotes, for example \"{value}\"")
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not VERSION.fullmatch(text):
        raise ValueError(f"must be a version name (letters, digits, . _ -), got {value!r}")
    return text


def _profile_fields(value: Any) -> tuple[str, ...]:
    names = _list_of(value, _string)
    for name in names:
        if name not in FIELDS:
            raise ValueError(f"unknown profile field {name!r}; the fields are {', '.join(FIELDS)}")
    return tuple(dict.fromkeys(names))


def _template(value: Any) -> str:
    text = _string(value)
    template_fields(text)
    return text


def _mime_type(value: Any) -> str:
    text = _string(value).lower()
    if not re.fullmatch(r"image/[a-z0-9.+\-]+", text):
        raise ValueError(f"{text!r} is not an image type like image/png")
    return text


SCHEMA: dict[str, Check] = {
    "homeserver.address": _http_url,
    "homeserver.domain": _server_name,
    "homeserver.verify_ssl": _boolean,
    "appservice.address": _http_url,
    "appservice.hostname": _string,
    "appservice.port": _integer(1, 65535),
    "appservice.database": _database_url,
    "appservice.database_opts": _pool,
    "appservice.id": _localpart,
    "appservice.bot_username": _localpart,
    "appservice.bot_displayname": _string,
    "appservice.as_token": _token,
    "appservice.hs_token": _token,
    "appservice.transaction_memory": _duration,
    "bridge.command_prefix": _command_prefix,
    "bridge.room_version": _room_version,
    "bridge.default_rooms": _room_names,
    "bridge.team_name_max_length": _integer(1, 255),
    "bridge.power_levels": _power_levels,
    "policy.trial.length": _duration,
    "policy.trial.grace": _duration,
    "policy.trial.warnings": lambda v: tuple(sorted(_list_of(v, _duration), reverse=True)),
    "policy.retention.min": _duration,
    "policy.retention.max": _duration,
    "policy.retention.default": _duration,
    "policy.retention.sweep_interval": _duration,
    "policy.retention.batch_size": _integer(1, 10000),
    "policy.retention.purge_slice": _duration,
    "policy.marketing_default": _boolean,
    "policy.version": _policy_version,
    "policy.consent.texts": _string,
    "policy.consent.mode": _one_of(CONSENT_MODES),
    "policy.profile.allowed": _profile_fields,
    "policy.profile.required": _profile_fields,
    "policy.profile.max_length": _integer(1, 255),
    "policy.profile.photo_types": lambda v: _list_of(v, _mime_type),
    "policy.profile.photo_max_kib": _integer(1, 100 * 1024),
    "policy.profile.display_name": _template,
    "policy.profile.enforce": _one_of(ENFORCE_MODES),
    "policy.reminder_interval": _duration,
    "policy.integrations.bots": lambda v: _list_of(v, _user_id),
    "policy.integrations.widget_url_prefixes": lambda v: _list_of(v, _widget_prefix),
    "jobs.poll_interval": _duration,
    "jobs.lease": _duration,
    "jobs.max_attempts": _integer(1, 100),
    "jobs.retry_backoff": _duration,
    "jobs.homeserver_rate": _integer(1, 10000),
    "export.directory": _string,
    "provisioning.enabled": _boolean,
    "provisioning.shared_secret": _token,
    "logging.level": _log_level,
    "logging.file": _optional_string,
}


def validate(data: Any) -> Settings:
    """Check every key of a loaded config and return typed settings."""
    if not isinstance(data, dict):
        raise ConfigError("(top level)", "the file must be a YAML map of sections")
    values: dict[str, Any] = {}
    for key, check in SCHEMA.items():
        node: Any = data
        for i, part in enumerate(key.split(".")):
            if not isinstance(node, dict) or part not in node:
                missing = ".".join(key.split(".")[: i + 1])
                raise ConfigError(missing, "missing (see example-config.yaml for its meaning)")
            node = node[part]
        try:
            values[key] = check(node)
        except ValueError as e:
            raise ConfigError(key, str(e)) from None

    def section(prefix: str, cls: type) -> Any:
        fields = {k[len(prefix) + 1 :]: v for k, v in values.items() if k.startswith(prefix + ".")}
        return cls(**{k: v for k, v in fields.items() if "." not in k})

    r = values
    if not r["policy.retention.min"] <= r["policy.retention.default"] <= r["policy.retention.max"]:
        raise ConfigError("policy.retention.default", "must lie between policy.retention.min and policy.retention.max")
    return Settings(
        consent=_consent(values),
        profile=_profile(values),
        reminder_interval=values["policy.reminder_interval"],
        homeserver=section("homeserver", HomeserverSettings),
        appservice=section("appservice", AppserviceSettings),
        bridge=section("bridge", BridgeSettings),
        trial=section("policy.trial", TrialSettings),
        retention=section("policy.retention", RetentionSettings),
        integrations=section("policy.integrations", IntegrationSettings),
        marketing_default=values["policy.marketing_default"],
        jobs=section("jobs", JobSettings),
        export=section("export", ExportSettings),
        provisioning=section("provisioning", ProvisioningSettings),
        logging=section("logging", LoggingSettings),
    )


def _consent(values: dict[str, Any]) -> ConsentSettings:
    folder = values["policy.consent.texts"]
    try:
        texts, packaged = policy_files.configured_or_packaged(folder)
    except ValueError as e:
        raise ConfigError("policy.consent.texts", str(e)) from None
    version = values["policy.version"]
    if version not in texts:
        known = ", ".join(sorted(texts)) or "none"
        where = f"the packaged placeholder texts ({folder} does not exist)" if packaged else folder
        raise ConfigError("policy.version", f"no policy text {version}.md in {where} (versions there: {known})")
    return ConsentSettings(version, values["policy.consent.mode"], texts)


def _profile(values: dict[str, Any]) -> ProfileRules:
    allowed, required = values["policy.profile.allowed"], values["policy.profile.required"]
    for name in required:
        if name not in allowed:
            raise ConfigError("policy.profile.required", f"{name} is required but not in policy.profile.allowed")
    for name in template_fields(values["policy.profile.display_name"]):
        if name not in allowed:
            raise ConfigError("policy.profile.display_name", f"uses {{{name}}}, which is not in policy.profile.allowed")
    if "photo" in allowed and not values["policy.profile.photo_types"]:
        raise ConfigError("policy.profile.photo_types", "must name at least one image type while photo is allowed")
    return ProfileRules(
        allowed=allowed,
        required=required,
        max_length=values["policy.profile.max_length"],
        photo_types=values["policy.profile.photo_types"],
        photo_max_bytes=values["policy.profile.photo_max_kib"] * 1024,
        display_name=values["policy.profile.display_name"],
        enforce=values["policy.profile.enforce"],
    )


# --- the file -----------------------------------------------------------------------------


class ConfigFile(BaseFileConfig):
    """The operator's YAML file, loaded with ruamel.yaml round trip so comments survive."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(str(path), str(EXAMPLE_CONFIG))

    def load(self) -> None:
        try:
            with open(self.path) as stream:
                self._data = round_trip_yaml().load(stream)
        except FileNotFoundError:
            raise ConfigError("(file)", f"{self.path} does not exist") from None
        except IsADirectoryError:
            raise ConfigError("(file)", f"{self.path} is a directory") from None
        except YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError("(file)", f"{self.path} is not valid YAML{where}") from None
        if self._data is None:
            self._data = CommentedMap()

    def save(self) -> None:
        """Write atomically (temp file + rename) so a crash never leaves half a config."""
        path = Path(self.path)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w") as stream:
            round_trip_yaml().dump(self._data, stream)
        os.replace(tmp, path)

    def do_update(self, helper: ConfigUpdateHelper) -> None:  # pragma: no cover - unused
        raise NotImplementedError("upgrade() keeps the operator's comments; use it instead")

    def settings(self) -> Settings:
        return validate(self._data)

    def fill_generated_secrets(self) -> bool:
        """Replace every 'generate' token with a fresh random one; True if any changed."""
        changed = False
        for key in ("appservice.as_token", "appservice.hs_token", "provisioning.shared_secret"):
            if self[key] == GENERATE:
                self[key] = secrets.token_urlsafe(32)
                changed = True
        return changed

    def upgrade(self) -> list[str]:
        """Add keys the example config has and this file lacks; return their paths.

        mautrix's ``update()`` rebuilds the file from the example and drops the operator's
        comments; here the operator's document is the base and only new keys are added,
        each with the comment that documents it in the example.
        """
        return add_missing_keys(self._data, EXAMPLE_CONFIG)
