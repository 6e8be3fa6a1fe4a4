"""Configuration: the keys as typed models, loading and validation, tokens, upgrades.

Where each thing is declared, once:

- **Keys, types and checks**: the pydantic models below. A model's fields are the keys of
  its section in the file, in the file's order; the annotated types of
  ``config_values.py`` hold the checks and the messages operators read. Checks across
  keys (retention bounds, profile fields) are model validators naming the key they fail on.
- **Meaning and default values**: ``example-config.yaml``, the manual operators read and
  the file ``config upgrade`` copies new keys from, with their comments. The models carry
  no defaults on purpose: a key missing from a file is an error that names it, never a
  silent default, and the example is the one place where a default is written down.
- ``tests/unit/test_config.py`` holds the two together: every model key is in the example
  with a comment, every key of the example is a model key, and the example validates.

Loading turns any problem into one ``ConfigError`` naming the dotted key, so the CLI can
print one line and exit with code 2. The policy texts are read here too (through
``policy_files``), so ``policy/`` stays free of I/O.
"""

from __future__ import annotations

import difflib
import logging
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, model_validator
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from yarl import URL

from clutto_bridge import policy_files
from clutto_bridge.config_upgrade import add_missing_keys, round_trip_yaml
from clutto_bridge.config_values import (
    FROM_FILE,
    GENERATE,
    ROLES,
    CommandPrefix,
    CookieRegistry,
    DatabaseUrl,
    Duration,
    DurationsDescending,
    FilePaths,
    Flag,
    HeaderMap,
    HeaderNames,
    HttpUrl,
    ImageTypes,
    KeyedValueError,
    Localpart,
    LogLevel,
    Networks,
    OneOf,
    OptionalHttpUrl,
    OptionalText,
    PolicyVersion,
    PoolBounds,
    PowerLevels,
    ProfileFields,
    RoomNames,
    RoomVersion,
    ServerName,
    Template,
    Text,
    Token,
    UserIds,
    WebhookEvents,
    WholeNumber,
    WidgetPrefixes,
)
from clutto_bridge.crypto import KeysetError, KeysetFile
from clutto_bridge.crypto.http_signatures import SigningKeys
from clutto_bridge.crypto.signing import SigningKeyError, load_or_create_signing_key, load_public_key, load_signing_key
from clutto_bridge.crypto.witness import FILE_NAME as WITNESS_FILE
from clutto_bridge.durations import format_duration
from clutto_bridge.policy.collection import IP_MODES, LANGUAGE_MODES, REFERRER_MODES, USER_AGENT_MODES, CollectionRules
from clutto_bridge.policy.consent import CONSENT_MODES, PolicyText
from clutto_bridge.policy.encryption import MODES as ENCRYPTION_MODES
from clutto_bridge.policy.profile import ENFORCE_MODES, ProfileRules, template_fields
from clutto_bridge.policy.retention import REDACT_MODES

__all__ = ["EXAMPLE_CONFIG", "GENERATE", "ROLES", "ConfigError", "ConfigFile", "Settings", "config_keys", "validate"]

log = logging.getLogger("clutto.config")
EXAMPLE_CONFIG = Path(__file__).with_name("example-config.yaml")
MISSING = "missing (see example-config.yaml for its meaning)"


class ConfigError(Exception):
    """A config problem, always tied to the key (dotted path) it is about."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


# --- the keys ------------------------------------------------------------------------------


class Section(BaseModel):
    """A map of keys in the file. An unknown key is refused: a typo must not fall back to a default."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class HomeserverSettings(Section):
    address: HttpUrl
    domain: ServerName
    verify_ssl: Flag


class TlsSettings(Section):
    """``appservice.tls``: both files set, the bridge serves HTTPS on its port; both empty, HTTP."""

    cert: OptionalText
    key: OptionalText

    @model_validator(mode="after")
    def _both_or_neither(self) -> TlsSettings:
        if bool(self.cert) != bool(self.key):
            raise KeyedValueError(
                "key" if self.cert else "cert", "set both appservice.tls.cert and appservice.tls.key, or neither"
            )
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.cert)


class AppserviceSettings(Section):
    address: HttpUrl
    hostname: Text
    port: Annotated[int, WholeNumber(1, 65535)]
    tls: TlsSettings
    database: DatabaseUrl
    database_opts: PoolBounds
    database_readers: Annotated[int, WholeNumber(0, 16)]
    id: Localpart
    bot_username: Localpart
    bot_displayname: Text
    as_token: Token
    hs_token: Token
    transaction_memory: Duration
    ping_interval: Duration
    body_timeout: Duration

    @model_validator(mode="after")
    def _tokens_differ(self) -> AppserviceSettings:
        # The homeserver proves itself with hs_token and we with as_token: one secret for both
        # directions lets anyone who learns it act as either side.
        if self.as_token == self.hs_token and self.as_token != GENERATE:
            raise KeyedValueError("hs_token", "must differ from appservice.as_token (each side has its own secret)")
        return self

    @property
    def url(self) -> str:
        """Where the homeserver reaches us (the registration's ``url``): https while TLS is on."""
        if self.tls.enabled and self.address.startswith("http://"):
            return "https://" + self.address.removeprefix("http://")
        return self.address


class BridgeSettings(Section):
    command_prefix: CommandPrefix
    room_version: RoomVersion
    default_rooms: RoomNames
    team_name_max_length: Annotated[int, WholeNumber(1, 255)]
    power_levels: PowerLevels


class ConsentFileSettings(Section):
    """``policy.consent`` as written; the texts it names are read into ``Settings.consent``."""

    texts: Text
    mode: Annotated[str, OneOf(CONSENT_MODES)]


class ProfileSettings(Section):
    """``policy.profile`` as written; ``Settings.profile`` is the ``ProfileRules`` made from it."""

    allowed: ProfileFields
    required: ProfileFields
    max_length: Annotated[int, WholeNumber(1, 255)]
    photo_types: ImageTypes
    photo_max_kib: Annotated[int, WholeNumber(1, 100 * 1024)]
    display_name: Template
    enforce: Annotated[str, OneOf(ENFORCE_MODES)]

    @model_validator(mode="after")
    def _fields_agree(self) -> ProfileSettings:
        for name in self.required:
            if name not in self.allowed:
                raise KeyedValueError("required", f"{name} is required but not in policy.profile.allowed")
        for name in template_fields(self.display_name):
            if name not in self.allowed:
                raise KeyedValueError("display_name", f"uses {{{name}}}, which is not in policy.profile.allowed")
        if "photo" in self.allowed and not self.photo_types:
            raise KeyedValueError("photo_types", "must name at least one image type while photo is allowed")
        return self

    def rules(self) -> ProfileRules:
        return ProfileRules(
            allowed=self.allowed,
            required=self.required,
            max_length=self.max_length,
            photo_types=self.photo_types,
            photo_max_bytes=self.photo_max_kib * 1024,
            display_name=self.display_name,
            enforce=self.enforce,
        )


class TrialSettings(Section):
    length: Duration
    grace: Duration
    warnings: DurationsDescending

    @model_validator(mode="after")
    def _warnings_within_trial(self) -> TrialSettings:
        longest = self.warnings[0] if self.warnings else 0
        if longest > self.length:
            raise KeyedValueError(
                "warnings",
                f"a warning {format_duration(longest)} before the purge is longer than the trial "
                f"(policy.trial.length: {format_duration(self.length)})",
            )
        return self


class RetentionSettings(Section):
    min: Duration
    max: Duration
    default: Duration
    sweep_interval: Duration
    batch_size: Annotated[int, WholeNumber(1, 10000)]
    purge_slice: Duration
    redact: Annotated[str, OneOf(REDACT_MODES)]

    @model_validator(mode="after")
    def _default_within_bounds(self) -> RetentionSettings:
        if not self.min <= self.default <= self.max:
            raise KeyedValueError("default", "must lie between policy.retention.min and policy.retention.max")
        return self


class IntegrationSettings(Section):
    bots: UserIds
    widget_url_prefixes: WidgetPrefixes


class CollectionSettings(Section):
    """``policy.collection``: what the bridge keeps of the requests it serves (P4)."""

    ip: Annotated[str, OneOf(IP_MODES)]
    user_agent: Annotated[str, OneOf(USER_AGENT_MODES)]
    referrer: Annotated[str, OneOf(REFERRER_MODES)]
    language: Annotated[str, OneOf(LANGUAGE_MODES)]
    retention: Duration
    trusted_proxies: Networks

    def rules(self) -> CollectionRules:
        return CollectionRules(self.ip, self.user_agent, self.referrer, self.language, self.trusted_proxies)


class PolicySettings(Section):
    version: PolicyVersion
    consent: ConsentFileSettings
    profile: ProfileSettings
    reminder_interval: Duration
    trial: TrialSettings
    retention: RetentionSettings
    marketing_default: Flag
    encryption: Annotated[str, OneOf(ENCRYPTION_MODES)]
    integrations: IntegrationSettings
    collection: CollectionSettings
    cookies: CookieRegistry


class JobSettings(Section):
    poll_interval: Duration
    lease: Duration
    max_attempts: Annotated[int, WholeNumber(1, 100)]
    retry_backoff: Duration
    homeserver_rate: Annotated[int, WholeNumber(1, 10000)]
    concurrency: Annotated[int, WholeNumber(1, 64)]
    keep_finished: Duration


class ExportSettings(Section):
    directory: OptionalText


class EmailSettings(Section):
    """``email``: the SMTP listener that turns mail to a team's address into a notice of its headers."""

    enabled: Flag
    hostname: Text
    port: Annotated[int, WholeNumber(1, 65535)]
    domain: ServerName
    max_size_kib: Annotated[int, WholeNumber(1, 100 * 1024)]
    headers: HeaderNames
    header_max_length: Annotated[int, WholeNumber(16, 2000)]


class SecuritySettings(Section):
    """``security``: key files. ``keyset`` encrypts personal data at rest (P12); ``signing_key``
    signs API responses, webhooks and audit checkpoints (P13, P14)."""

    keyset: Text
    signing_key: Text
    previous_signing_keys: FilePaths


class AuditSettings(Section):
    """``audit``: how often the head of the hash-chained audit log is signed."""

    checkpoint_rows: Annotated[int, WholeNumber(1, 1_000_000)]
    checkpoint_interval: Duration


class WebhookSettings(Section):
    """One receiver of ``webhooks``: its URL, the events it wants, extra headers (secrets, never logged)."""

    url: HttpUrl
    events: WebhookEvents
    headers: HeaderMap


class ProvisioningSettings(Section):
    enabled: Flag
    shared_secret: Token


class ScimSettings(Section):
    """``scim``: what a team's identity provider may do beyond membership and roles (issue 27)."""

    deactivate: Flag
    room_groups: RoomNames


class AntispamSettings(Section):
    """``antispam``: the endpoints synapse-http-antispam calls before Synapse stores an event."""

    enabled: Flag
    shared_secret: Token


class AnalyticsSettings(Section):
    k: Annotated[int, WholeNumber(2, 1000)]
    metrics_enabled: Flag
    metrics_secret: Token


class PortalSettings(Section):
    """``portal``: the privacy portal served under ``/portal/`` on the appservice port."""

    enabled: Flag
    public_url: OptionalHttpUrl
    link_lifetime: Duration
    links_per_hour: Annotated[int, WholeNumber(1, 100)]

    def base_url(self, appservice_address: str) -> str:
        """Where members reach the portal: ``public_url``, else under the appservice address."""
        return (self.public_url or appservice_address.rstrip("/") + "/portal").rstrip("/")


class LoggingSettings(Section):
    level: LogLevel
    file: OptionalText


@dataclass(frozen=True)
class ConsentSettings:
    """The policy versions as the bridge uses them: the current one, the mode, every text."""

    version: str
    mode: str
    texts: dict[str, PolicyText]

    @property
    def current(self) -> PolicyText:
        return self.texts[self.version]


class Settings(Section):
    """The whole file. The rest of the bridge reads it as attributes.

    The ``policy`` section's parts are also reachable at the top (``settings.trial``,
    ``settings.retention``, ...), where the code has always read them.
    """

    homeserver: HomeserverSettings
    appservice: AppserviceSettings
    bridge: BridgeSettings
    policy: PolicySettings
    jobs: JobSettings
    export: ExportSettings
    email: EmailSettings
    security: SecuritySettings
    audit: AuditSettings
    provisioning: ProvisioningSettings
    scim: ScimSettings
    webhooks: tuple[WebhookSettings, ...]
    antispam: AntispamSettings
    analytics: AnalyticsSettings
    portal: PortalSettings
    logging: LoggingSettings

    _texts: dict[str, PolicyText] = PrivateAttr(default_factory=dict)
    _folder: Path = PrivateAttr(default_factory=Path)

    @property
    def signing_key_path(self) -> Path:
        """``security.signing_key``; a relative path is beside the config file."""
        return self._folder / self.security.signing_key

    @property
    def keyset_path(self) -> Path:
        """``security.keyset``; a relative path is beside the config file."""
        return self._folder / self.security.keyset

    @property
    def witness_path(self) -> Path:
        """The audit log's witness (``crypto.witness``), beside the keyset: outside the database."""
        return self.keyset_path.with_name(WITNESS_FILE)

    @property
    def export_folder(self) -> Path:
        """``export.directory``, or by default a folder beside the SQLite database (with
        PostgreSQL, in the operator's data folder): never inside a source checkout."""
        if self.export.directory:
            return Path(self.export.directory)
        database = sqlite_file(self.appservice.database)
        if database is not None:
            return database.absolute().parent / "exports"
        return Path.home() / ".local" / "share" / "clutto-bridge" / "exports"

    @property
    def bot_mxid(self) -> str:
        return f"@{self.appservice.bot_username}:{self.homeserver.domain}"

    @property
    def trial(self) -> TrialSettings:
        return self.policy.trial

    @property
    def retention(self) -> RetentionSettings:
        return self.policy.retention

    @property
    def integrations(self) -> IntegrationSettings:
        return self.policy.integrations

    @property
    def collection(self) -> CollectionSettings:
        return self.policy.collection

    @property
    def marketing_default(self) -> bool:
        return self.policy.marketing_default

    @property
    def reminder_interval(self) -> int:
        return self.policy.reminder_interval

    @cached_property
    def profile(self) -> ProfileRules:
        return self.policy.profile.rules()

    @cached_property
    def consent(self) -> ConsentSettings:
        return ConsentSettings(self.policy.version, self.policy.consent.mode, self._texts)


def config_keys(model: type[BaseModel] = Settings, prefix: str = "") -> Iterator[str]:
    """Every key a config file has, dotted (``appservice.port``), in the file's order."""
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            yield from config_keys(kind, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


# --- validation ------------------------------------------------------------------------------


def validate(data: Any) -> Settings:
    """Check every key of a loaded config, read the policy texts, and return the settings."""
    if not isinstance(data, dict):
        raise ConfigError("(top level)", "the file must be a YAML map of sections")
    try:
        settings = Settings.model_validate(data, context=FROM_FILE)
    except ValidationError as e:
        raise _first_problem(e) from None
    settings._texts = _policy_texts(settings.policy)
    return settings


def _first_problem(error: ValidationError) -> ConfigError:
    """pydantic's first error as ours: its location as the dotted key, our message.

    An unknown key comes first: a typo in a required key (``portt``) also makes that key
    missing, and the typo is what the operator has to fix."""
    problem = min(error.errors(), key=lambda p: p["type"] != "extra_forbidden")
    key = [str(part) for part in problem["loc"]]
    cause = problem.get("ctx", {}).get("error")
    if isinstance(cause, KeyedValueError):
        key.append(cause.field)
    dotted = ".".join(key) or "(top level)"
    if problem["type"] == "missing":
        return ConfigError(dotted, MISSING)
    if problem["type"] == "extra_forbidden":
        return ConfigError(
            dotted, f"unknown key `{dotted}`" + (_nearest(key) or " (see example-config.yaml for the keys there are)")
        )
    if problem["type"] in ("model_type", "model_attributes_type", "dict_type"):
        return ConfigError(dotted, f"must be a map of keys (see example-config.yaml), got {problem['input']!r}")
    if isinstance(cause, ValueError):
        return ConfigError(dotted, str(cause))
    return ConfigError(dotted, problem["msg"])


def _nearest(key: list[str]) -> str:
    """A suggestion for a mistyped key: the closest key of the same section."""
    model: Any = Settings
    for part in key[:-1]:
        field = model.model_fields.get(part)
        model = field.annotation if field is not None else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return ""
    close = difflib.get_close_matches(key[-1], list(model.model_fields), n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def check_environment(settings: Settings) -> None:
    """What start-up would trip on outside the file: folders that are missing or not writable,
    key and certificate files that are missing or too open.

    ``config check`` and start-up both run it, so a config that passes the check starts.
    """
    signing_keys(settings)
    for key in ("cert", "key"):
        path = getattr(settings.appservice.tls, key)
        if path and not os.access(path, os.R_OK):
            raise ConfigError(f"appservice.tls.{key}", f"{path} does not exist or cannot be read")
    database = sqlite_file(settings.appservice.database)
    if database is not None:
        _writable_file("appservice.database", database)
    if settings.logging.file:
        _writable_file("logging.file", Path(settings.logging.file))
    _creatable_folder("export.directory", settings.export_folder)
    _usable_signing_key(settings.signing_key_path)
    try:
        KeysetFile(settings.keyset_path).load()
    except KeysetError as e:
        raise ConfigError("security.keyset", str(e)) from None


def _usable_signing_key(path: Path) -> None:
    """An existing key must be readable and the owner's only; a missing one is made at start."""
    if not path.exists():
        _writable_file("security.signing_key", path)
        return
    try:
        load_signing_key(path)
    except SigningKeyError as e:
        raise ConfigError("security.signing_key", str(e)) from None


def signing_keys(settings: Settings) -> SigningKeys:
    """The signing key (made on first start when missing) and the earlier public keys; a bad
    file is an error naming its key. Relative paths are beside the config file."""
    try:
        current, created = load_or_create_signing_key(settings.signing_key_path)
    except SigningKeyError as e:
        raise ConfigError("security.signing_key", str(e)) from None
    if created:
        log.info("Made a new signing key in %s (keep it readable by the bridge only)", settings.signing_key_path)
    previous = []
    for path in settings.security.previous_signing_keys:
        try:
            previous.append(load_public_key(settings._folder / path))
        except SigningKeyError as e:
            raise ConfigError("security.previous_signing_keys", str(e)) from None
    return SigningKeys(current, previous)


def sqlite_file(database: str) -> Path | None:
    """The file of the embedded SQLite database (``sqlite:FILE``); None for PostgreSQL."""
    if database.split(":", 1)[0] not in ("sqlite", "sqlite3"):
        return None
    return Path(URL(database).path)


def _writable_file(key: str, path: Path) -> None:
    folder = path.absolute().parent
    if not folder.is_dir():
        raise ConfigError(key, f"the folder {folder} does not exist")
    if path.exists() and (path.is_dir() or not os.access(path, os.W_OK)):
        raise ConfigError(key, f"{path} is not a file the bridge can write")
    if not path.exists() and not _can_write_in(folder):
        raise ConfigError(key, f"the bridge cannot create files in {folder}")


def _creatable_folder(key: str, path: Path) -> None:
    path = path.absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(key, f"{existing} is not a folder")
    if not _can_write_in(existing):
        raise ConfigError(key, f"the bridge cannot write in {existing}")


def _can_write_in(folder: Path) -> bool:
    """Try it: permission bits do not tell (root passes them, /proc refuses everyone)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _policy_texts(policy: PolicySettings) -> dict[str, PolicyText]:
    folder = policy.consent.texts
    try:
        texts, packaged = policy_files.configured_or_packaged(folder)
    except ValueError as e:
        raise ConfigError("policy.consent.texts", str(e)) from None
    if policy.version not in texts:
        known = ", ".join(sorted(texts)) or "none"
        where = f"the packaged placeholder texts ({folder} does not exist)" if packaged else folder
        raise ConfigError("policy.version", f"no policy text {policy.version}.md in {where} (versions there: {known})")
    return texts


# --- the file ---------------------------------------------------------------------------------


class ConfigFile:
    """The operator's YAML file, loaded with ruamel.yaml round trip so comments survive.

    ``file["appservice.port"]`` reads a value (None when absent) and assigns one, creating
    the maps on the way, like mautrix's config did.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._data: CommentedMap = CommentedMap()

    def load(self) -> None:
        try:
            with open(self.path) as stream:
                data = round_trip_yaml().load(stream)
        except FileNotFoundError:
            raise ConfigError("(file)", f"{self.path} does not exist") from None
        except IsADirectoryError:
            raise ConfigError("(file)", f"{self.path} is a directory") from None
        except YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError("(file)", f"{self.path} is not valid YAML{where}") from None
        self._data = CommentedMap() if data is None else data

    def save(self) -> None:
        """Write atomically (temp file + rename) so a crash never leaves half a config."""
        path = Path(self.path)
        tmp = path.with_name(f".{path.name}.tmp")
        # The file holds tokens: readable by its owner only, from the first byte on.
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as stream:
            round_trip_yaml().dump(self._data, stream)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)

    def get(self, key: str, default: Any = None) -> Any:
        node: Any = self._data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def __getitem__(self, key: str) -> Any:
        return self.get(key)

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __setitem__(self, key: str, value: Any) -> None:
        *parents, last = key.split(".")
        node = self._data
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = CommentedMap()
            node = node[part]
        node[last] = value

    def settings(self) -> Settings:
        settings = validate(self._data)
        settings._folder = Path(self.path).absolute().parent
        return settings

    def fill_generated_secrets(self) -> bool:
        """Replace every 'generate' token with a fresh random one; True if any changed."""
        changed = False
        for key in (
            "appservice.as_token",
            "appservice.hs_token",
            "provisioning.shared_secret",
            "antispam.shared_secret",
            "analytics.metrics_secret",
        ):
            if self[key] == GENERATE:
                self[key] = secrets.token_urlsafe(32)
                changed = True
        return changed

    def upgrade(self) -> list[str]:
        """Add keys the example config has and this file lacks, with their comments; return their paths."""
        return add_missing_keys(self._data, EXAMPLE_CONFIG)
