"""What the bridge keeps of a request it serves (promise P4): pure decisions, no I/O.

The web layer hands in the facts of one request (the peer address, the headers) and the
operator's choices (``policy.collection``); these functions say what may be written to
the access log and the access records. The daily salt of ``hashed`` addresses is made
and held by the caller (in memory only) and passed in, like the clock.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

IP_MODES = ("full", "truncated", "hashed", "none")
USER_AGENT_MODES = ("full", "family", "none")
REFERRER_MODES = ("full", "origin", "none")
LANGUAGE_MODES = ("keep", "none")

# Truncation keeps the network, not the host: IPv4 /24, IPv6 /48 (what analytics tools that
# anonymise addresses keep).
IPV4_PREFIX = 24
IPV6_PREFIX = 48
# Longest header value kept in full modes: a header is not a place to store a novel.
MAX_VALUE = 300
DAY_MS = 86400 * 1000

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class CollectionRules:
    """``policy.collection`` as the decisions use it."""

    ip: str = "truncated"
    user_agent: str = "family"
    referrer: str = "origin"
    language: str = "none"
    trusted_proxies: tuple[Network, ...] = ()


@dataclass(frozen=True)
class RequestFacts:
    """What a request tells about its sender, as the policy allows it to be kept."""

    client: str | None
    user_agent: str | None
    referrer: str | None
    language: str | None


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or single addresses) as networks; ValueError names the one that is not."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network like 10.0.0.0/8") from None
    return tuple(networks)


def parse_address(text: str | None) -> Address | None:
    """An address as written in a peer or a header (``[::1]``, ``1.2.3.4``); IPv4-mapped IPv6 as IPv4."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    try:
        # The C parser first (a request's addresses are parsed on every request), which is
        # as strict as ipaddress (no leading zeros, no short forms); ipaddress for the rest
        # (an IPv6 zone) and to refuse.
        address: ipaddress.IPv4Address | ipaddress.IPv6Address
        if ":" in text:
            address = ipaddress.IPv6Address(socket.inet_pton(socket.AF_INET6, text))
        else:
            address = ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, text))
    except (OSError, ValueError):
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> Address | None:
    """The real client: the peer, unless the peer is a trusted proxy; then the nearest
    address in ``X-Forwarded-For`` (read from the right) that is not a trusted proxy.

    An address a client wrote itself at the left of the header is never believed over one
    a trusted proxy added on the right.
    """
    address = parse_address(peer)
    if address is None or not forwarded_for or not _trusted(address, trusted):
        return address
    for hop in reversed(forwarded_for.split(",")):
        hop_address = parse_address(hop)
        if hop_address is None:
            break  # garbage from here on was written by the client: keep the last good hop
        address = hop_address
        if not _trusted(address, trusted):
            break
    return address


def _trusted(address: Address, trusted: tuple[Network, ...]) -> bool:
    # ``address in net`` as integers (ipaddress's own test costs more than the rest of a
    # request's facts).
    value = int(address)
    return any(
        address.version == net.version and value & int(net.netmask) == int(net.network_address) for net in trusted
    )


def kept_address(address: Address | None, mode: str, salt: bytes) -> str | None:
    """The address as the policy keeps it: whole, its network, a keyed hash, or nothing."""
    if address is None or mode == "none":
        return None
    if mode == "full":
        return str(address)
    if mode == "truncated":
        prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
        return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
    if mode == "hashed":
        return f"h:{hmac.digest(salt, address.packed, 'sha256')[:8].hex()}"  # one-shot: a third of hmac.new's time
    raise ValueError(f"unknown ip mode {mode!r}")


def day_of(now_ms: int) -> int:
    """The UTC day a salt belongs to: hashes of one day link, of two days do not."""
    return now_ms // DAY_MS


def is_loopback(address: str) -> bool:
    """A listener address only this machine reaches (``localhost``, 127.0.0.0/8, ``::1``,
    bracketed or not): where plain HTTP carries nothing across a network."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


# --- user agents --------------------------------------------------------------------------

# Order matters: Edge and Opera also say Chrome, Chrome also says Safari.
_BROWSERS = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"\b(?:OPR|Opera)/")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/")),
    ("Element", re.compile(r"\b(?:Element|Riot)(?:-?\w+)?/")),
    ("Chrome", re.compile(r"\b(?:Chrome|Chromium|CriOS)/")),
    ("Safari", re.compile(r"\bVersion/[\d.]+.*\bSafari/")),
    ("Synapse", re.compile(r"^Synapse/")),
    ("mautrix", re.compile(r"\bmautrix")),
    ("curl", re.compile(r"^curl/")),
    ("Python", re.compile(r"\b(?:python-requests|Python-urllib|aiohttp|httpx)/", re.I)),
)
_SYSTEMS = (
    ("Android", re.compile(r"\bAndroid\b")),
    ("iOS", re.compile(r"\b(?:iPhone|iPad|iPod)\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b")),
)


@lru_cache(maxsize=256)
def user_agent_family(user_agent: str) -> str:
    """Browser and operating system by name, without versions: ``Firefox on Linux``.

    Remembered for the last 256 user agents: the same few browsers send every request, and
    the patterns cost more than the rest of a request's facts (no address is remembered).
    """
    browser = next((name for name, pattern in _BROWSERS if pattern.search(user_agent)), "Other")
    system = next((name for name, pattern in _SYSTEMS if pattern.search(user_agent)), None)
    return f"{browser} on {system}" if system else browser


def kept_user_agent(user_agent: str | None, mode: str) -> str | None:
    if not user_agent or mode == "none":
        return None
    if mode == "family":
        return user_agent_family(user_agent)
    return _printable(user_agent)


def kept_referrer(referrer: str | None, mode: str) -> str | None:
    """The whole referrer, its origin (scheme, host, port: no path or query), or nothing."""
    if not referrer or mode == "none":
        return None
    try:
        parts = urlsplit(referrer.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    if mode == "origin":
        host = f"[{host}]" if ":" in host else host
        return f"{parts.scheme}://{host}" + (f":{port}" if port else "")
    return _printable(referrer)


def kept_language(language: str | None, mode: str) -> str | None:
    if not language or mode == "none":
        return None
    return _printable(language)


def _printable(value: str) -> str:
    """One line of printable text, cut: a header must not forge log lines."""
    return "".join(c if c.isprintable() else " " for c in value.strip())[:MAX_VALUE]


def request_facts(
    rules: CollectionRules,
    peer: str | None,
    headers: Mapping[str, str | None],
    salt: bytes,
) -> RequestFacts:
    """Everything the access log and the access records may keep of one request."""
    address = client_address(peer, headers.get("X-Forwarded-For"), rules.trusted_proxies)
    return RequestFacts(
        client=kept_address(address, rules.ip, salt),
        user_agent=kept_user_agent(headers.get("User-Agent"), rules.user_agent),
        referrer=kept_referrer(headers.get("Referer"), rules.referrer),
        language=kept_language(headers.get("Accept-Language"), rules.language),
    )
