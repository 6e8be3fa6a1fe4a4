"""policy.collection: what is kept of a request's address, user agent, referrer and language."""

from __future__ import annotations

import pytest

from clutto_bridge.policy.collection import (
    CollectionRules,
    client_address,
    day_of,
    kept_address,
    kept_language,
    kept_referrer,
    kept_user_agent,
    parse_address,
    parse_networks,
    request_facts,
    user_agent_family,
)

PROXY = parse_networks(["127.0.0.1", "10.0.0.0/8"])
SALT = b"s" * 32
FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME_ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
SAFARI_IOS = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
EDGE = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87"


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "198.51.100.7", "203.0.113.9"),  # not a trusted proxy: its header is ignored
        ("127.0.0.1", "198.51.100.7", "198.51.100.7"),
        ("127.0.0.1", "6.6.6.6, 198.51.100.7, 10.1.2.3", "198.51.100.7"),  # the client's own claim at the left loses
        ("127.0.0.1", "10.1.2.3, 10.0.0.1", "10.1.2.3"),  # all proxies: the farthest one
        ("127.0.0.1", "not-an-address, 198.51.100.7", "198.51.100.7"),
        ("127.0.0.1", "198.51.100.7, garbage", "127.0.0.1"),  # garbage right of us: keep the last good hop
        ("::ffff:127.0.0.1", "2001:db8::5", "2001:db8::5"),
        (None, "198.51.100.7", None),
    ],
)
def test_the_client_is_the_peer_unless_a_trusted_proxy_forwarded(peer, header, expected) -> None:
    got = client_address(peer, header, PROXY)
    assert (str(got) if got else None) == expected


@pytest.mark.parametrize(
    ("address", "mode", "expected"),
    [
        ("203.0.113.9", "full", "203.0.113.9"),
        ("203.0.113.9", "truncated", "203.0.113.0/24"),
        ("2001:db8:1234:5678::1", "truncated", "2001:db8:1234::/48"),
        ("203.0.113.9", "none", None),
    ],
)
def test_addresses_are_kept_whole_truncated_or_not_at_all(address, mode, expected) -> None:
    assert kept_address(parse_address(address), mode, SALT) == expected


def test_hashed_addresses_link_within_a_day_and_not_across_salts() -> None:
    a = parse_address("203.0.113.9")
    today = kept_address(a, "hashed", SALT)
    assert today == kept_address(parse_address("203.0.113.9"), "hashed", SALT)
    assert today != kept_address(parse_address("203.0.113.10"), "hashed", SALT)
    assert today != kept_address(a, "hashed", b"t" * 32)
    assert "203" not in today and today.startswith("h:")


def test_salt_days_are_utc_days() -> None:
    assert day_of(0) == day_of(86400_000 - 1) != day_of(86400_000)


@pytest.mark.parametrize(
    ("agent", "family"),
    [
        (FIREFOX, "Firefox on Linux"),
        (CHROME_ANDROID, "Chrome on Android"),
        (SAFARI_IOS, "Safari on iOS"),
        (EDGE, "Edge on Windows"),
        ("Synapse/1.163.2", "Synapse"),
        ("curl/8.5.0", "curl"),
        ("something else/1.0", "Other"),
    ],
)
def test_user_agent_family_names_browser_and_system_without_versions(agent, family) -> None:
    assert user_agent_family(agent) == family
    assert not any(c.isdigit() for c in user_agent_family(agent))


def test_user_agent_modes() -> None:
    assert kept_user_agent(FIREFOX, "full") == FIREFOX
    assert kept_user_agent(FIREFOX, "none") is None
    assert kept_user_agent("evil\nINFO forged line", "full") == "evil INFO forged line"


@pytest.mark.parametrize(
    ("referrer", "mode", "expected"),
    [
        ("https://chat.example.com/#/room/!abc:example.com?x=1", "origin", "https://chat.example.com"),
        ("http://[2001:db8::1]:8080/path", "origin", "http://[2001:db8::1]:8080"),
        ("https://chat.example.com/path", "full", "https://chat.example.com/path"),
        ("https://chat.example.com/path", "none", None),
        ("javascript:alert(1)", "origin", None),
        ("http://[broken/", "origin", None),
    ],
)
def test_referrer_modes(referrer, mode, expected) -> None:
    assert kept_referrer(referrer, mode) == expected


def test_language_is_kept_or_not() -> None:
    assert kept_language("de-CH, de;q=0.9", "keep") == "de-CH, de;q=0.9"
    assert kept_language("de-CH", "none") is None


def test_request_facts_apply_every_rule() -> None:
    rules = CollectionRules(
        ip="truncated", user_agent="family", referrer="origin", language="none", trusted_proxies=PROXY
    )
    headers = {
        "X-Forwarded-For": "198.51.100.7",
        "User-Agent": FIREFOX,
        "Referer": "https://a.example/x",
        "Accept-Language": "fr",
    }
    facts = request_facts(rules, "127.0.0.1", headers, SALT)
    assert (facts.client, facts.user_agent, facts.referrer, facts.language) == (
        "198.51.100.0/24",
        "Firefox on Linux",
        "https://a.example",
        None,
    )


def test_networks_are_checked() -> None:
    with pytest.raises(ValueError, match="not an IP address or network"):
        parse_networks(["10.0.0.0/33"])


def reference_parse(text: str) -> object:
    """ipaddress alone, as parse_address read addresses before its C fast path."""
    import ipaddress

    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped else address


@pytest.mark.parametrize(
    "text",
    [
        "1.2.3.4",
        " 1.2.3.4 ",
        "01.2.3.4",
        "1.2.3.04",
        "1.2.3",
        "1",
        "0x1.2.3.4",
        "256.1.1.1",
        "1.2.3.4/24",
        "\u0661.2.3.4",
        "::1",
        "[::1]",
        "[::1]:8080",
        "::ffff:1.2.3.4",
        "::1.2.3.4",
        "fe80::1%eth0",
        "1::2::3",
        "2001:DB8:0:0:0:0:0:1",
        "2001:db8::",
        ":::",
        "",
    ],
)
def test_addresses_parse_exactly_as_ipaddress_parses_them(text: str) -> None:
    parsed, expected = parse_address(text), reference_parse(text)
    assert parsed == expected and type(parsed) is type(expected)
