"""The kinds of values config keys hold, as annotated types for the models in ``config.py``.

Each check takes what YAML gave and returns the typed value, or raises ValueError with
the message the operator reads after the key's name. The checks are strict on purpose
(``port: "29330"`` and ``enabled: 1`` are mistakes, not values to coerce), so they run
before pydantic's own, lenient, conversion and decide alone.

Durations are written with a unit in the file (``90d``); a bare number there is an
error, because nobody can tell 90 seconds from 90 days. Python code that builds a
section directly (``JobSettings(lease=30)``) passes seconds: models validated from a
file carry the ``FROM_FILE`` context, which is how the two are told apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo
from yarl import URL

from clutto_bridge.durations import DurationError, parse_duration
from clutto_bridge.policy.collection import parse_networks
from clutto_bridge.policy.consent import VERSION
from clutto_bridge.policy.cookies import CATEGORIES, COOKIE_NAME, Cookie
from clutto_bridge.policy.ids import USER_ID
from clutto_bridge.policy.profile import FIELDS, template_fields

GENERATE = "generate"
ROLES = ("owner", "admin", "member", "guest")
FROM_FILE = {"source": "file"}

Check = Callable[[Any], Any]


class KeyedValueError(ValueError):
    """A check across keys of one section, failing on the key ``field`` of that section."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


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


def _optional_http_url(value: Any) -> str:
    if value is None or value == "":
        return ""
    return _http_url(value)


def _database_url(value: Any) -> str:
    text = _string(value)
    scheme = text.split(":", 1)[0]
    if scheme in ("sqlite", "sqlite3"):
        if not URL(text).path:
            raise ValueError("sqlite URL needs a file, for example sqlite:clutto.db")
    elif scheme in ("postgres", "postgresql"):
        if not text.startswith(f"{scheme}://"):
            raise ValueError("write PostgreSQL as postgres://user:password@host:port/database")
        try:
            url = URL(text)
        except ValueError as e:
            raise ValueError(
                f"is not a valid PostgreSQL URL ({e}); write postgres://user:password@host:port/database"
            ) from None
        if not url.host or url.path in ("", "/"):
            raise ValueError("needs a host and a database: postgres://user:password@host:port/database")
    else:
        raise ValueError(f"must start with sqlite: or postgres://, got {text!r}")
    return text


def _seconds(value: Any) -> int:
    try:
        seconds = parse_duration(value)
    except DurationError as e:
        raise ValueError(str(e)) from None
    if seconds <= 0:
        raise ValueError("must be longer than zero")
    return seconds


def _duration(value: Any, info: ValidationInfo) -> int:
    if info.context != FROM_FILE and isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError("must be longer than zero")
        return value  # seconds, from Python code
    return _seconds(value)


def _matching(pattern: str | re.Pattern, what: str) -> Check:
    compiled = re.compile(pattern)

    def check(value: Any) -> str:
        text = _string(value)
        if not compiled.fullmatch(text):
            raise ValueError(f"must be {what}, got {text!r}")
        return text

    return check


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
    if not isinstance(value, (list, tuple)):
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


def _widget_prefix(value: Any) -> str:
    text = _string(value)
    url = URL(text)
    if url.scheme != "https" or not url.host:
        raise ValueError(f"{text!r} is not an https:// URL prefix")
    return text


def _list_of(item: Check) -> Check:
    def check(value: Any) -> tuple:
        if value is None:
            return ()
        if not isinstance(value, (list, tuple)):
            raise ValueError("must be a list")
        return tuple(item(v) for v in value)

    return check


def _durations_descending(value: Any, info: ValidationInfo) -> tuple[int, ...]:
    items = _list_of(lambda v: _duration(v, info))(value)
    return tuple(sorted(items, reverse=True))


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
        raise ValueError(f'write the version in quotes, for example "{value}"')
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not VERSION.fullmatch(text):
        raise ValueError(f"must be a version name (letters, digits, . _ -), got {value!r}")
    return text


def _profile_field(value: Any) -> str:
    name = _string(value)
    if name not in FIELDS:
        raise ValueError(f"unknown profile field {name!r}; the fields are {', '.join(FIELDS)}")
    return name


def _profile_fields(value: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_list_of(_profile_field)(value)))


def _template(value: Any) -> str:
    text = _string(value)
    template_fields(text)
    return text


def _mime_type(value: Any) -> str:
    text = _string(value).lower()
    if not re.fullmatch(r"image/[a-z0-9.+\-]+", text):
        raise ValueError(f"{text!r} is not an image type like image/png")
    return text


def _header_names(value: Any) -> tuple[str, ...]:
    names = _list_of(_matching(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", "a mail header name like Subject"))(value)
    if not names:
        raise ValueError("must name at least one header, for example [From, Subject]")
    return tuple({n.casefold(): n for n in names}.values())


def _networks(value: Any) -> tuple:
    items = _list_of(_string)(value)
    return parse_networks(items)


# What a webhook receiver may subscribe to (config ``webhooks[].events``).
WEBHOOK_EVENTS = ("audit", "team.purged", "export.ready")
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]+")


def _webhook_events(value: Any) -> tuple[str, ...]:
    events = _list_of(_one_of(WEBHOOK_EVENTS))(value)
    if not events:
        raise ValueError(f"must name at least one of {', '.join(WEBHOOK_EVENTS)}")
    return events


def _header_map(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("must be a map of header names to values")
    for name, text in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a header name (letters, digits, -)")
        if name.lower() in ("content-type", "content-digest", "signature", "signature-input", "host", "content-length"):
            raise ValueError(f"{name} is set by the bridge")
        _string(text)
    return {name: str(text).strip() for name, text in value.items()}


def _cookie(value: Any) -> Cookie:
    if not isinstance(value, dict) or set(value) != {"name", "purpose", "lifetime", "category"}:
        raise ValueError(f"each cookie is a map of name, purpose, lifetime and category, got {value!r}")
    name = _matching(COOKIE_NAME, "a cookie name (letters, digits, _ and -)")(value["name"])
    lifetime = 0 if value["lifetime"] == "session" else _seconds(value["lifetime"])
    category = _one_of(CATEGORIES)(value["category"])
    return Cookie(name, _string(value["purpose"]), lifetime, category)


def _cookie_registry(value: Any) -> tuple[Cookie, ...]:
    cookies = _list_of(_cookie)(value)
    names = [c.name for c in cookies]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"lists {', '.join(twice)} more than once")
    return cookies


def OneOf(choices: tuple[str, ...]) -> BeforeValidator:
    """``Annotated[str, OneOf(choices)]``: one of ``choices``."""
    return BeforeValidator(_one_of(choices))


def WholeNumber(low: int, high: int) -> BeforeValidator:
    """``Annotated[int, WholeNumber(low, high)]``: a whole number from ``low`` to ``high``."""
    return BeforeValidator(_integer(low, high))


Text = Annotated[str, BeforeValidator(_string)]
OptionalText = Annotated[str, BeforeValidator(_optional_string)]
Flag = Annotated[bool, BeforeValidator(_boolean)]
HttpUrl = Annotated[str, BeforeValidator(_http_url)]
OptionalHttpUrl = Annotated[str, BeforeValidator(_optional_http_url)]
DatabaseUrl = Annotated[str, BeforeValidator(_database_url)]
PoolBounds = Annotated[dict[str, int], BeforeValidator(_pool)]
Localpart = Annotated[str, BeforeValidator(_matching(r"[a-z0-9._=\-/]+", "a Matrix user name (a-z, 0-9, ._=-/)"))]
ServerName = Annotated[str, BeforeValidator(_matching(r"[A-Za-z0-9.\-\[\]:]+", "a server name like example.com"))]
Token = Annotated[str, BeforeValidator(_token)]
Duration = Annotated[int, BeforeValidator(_duration)]
DurationsDescending = Annotated[tuple[int, ...], BeforeValidator(_durations_descending)]
CommandPrefix = Annotated[str, BeforeValidator(_command_prefix)]
RoomVersion = Annotated[str, BeforeValidator(_room_version)]
RoomNames = Annotated[tuple[str, ...], BeforeValidator(_room_names)]
PowerLevels = Annotated[dict[str, int], BeforeValidator(_power_levels)]
UserIds = Annotated[
    tuple[str, ...], BeforeValidator(_list_of(_matching(USER_ID, "a Matrix user ID like @bot:example.com")))
]
WidgetPrefixes = Annotated[tuple[str, ...], BeforeValidator(_list_of(_widget_prefix))]
LogLevel = Annotated[str, BeforeValidator(_log_level)]
PolicyVersion = Annotated[str, BeforeValidator(_policy_version)]
ProfileFields = Annotated[tuple[str, ...], BeforeValidator(_profile_fields)]
Template = Annotated[str, BeforeValidator(_template)]
HeaderNames = Annotated[tuple[str, ...], BeforeValidator(_header_names)]
FilePaths = Annotated[tuple[str, ...], BeforeValidator(_list_of(_string))]
WebhookEvents = Annotated[tuple[str, ...], BeforeValidator(_webhook_events)]
HeaderMap = Annotated[dict[str, str], BeforeValidator(_header_map)]
CookieRegistry = Annotated[tuple[Cookie, ...], BeforeValidator(_cookie_registry)]
ImageTypes = Annotated[tuple[str, ...], BeforeValidator(_list_of(_mime_type))]
Networks = Annotated[tuple, BeforeValidator(_networks)]
