"""Email, headers only (P16): what of a message a team sees, decided on bytes without I/O."""

from __future__ import annotations

import pytest

from clutto_bridge.policy.mail import (
    ShownHeader,
    address_local_part,
    header_block,
    notice,
    one_line,
    recipient_local_part,
    shown_headers,
)

ALLOWED = ("From", "To", "Cc", "Subject", "Date", "Message-ID")


def test_only_the_header_block_reaches_the_parser() -> None:
    message = b"Subject: hi\r\nTo: a@b\r\n\r\nthe body CANARY\r\n\r\nmore\r\n"
    assert header_block(message) == b"Subject: hi\r\nTo: a@b\r\n"
    assert b"CANARY" not in header_block(b"Subject: hi\n\nCANARY\n")
    assert header_block(b"Subject: only headers\r\n") == b"Subject: only headers\r\n"


def test_allowlisted_headers_in_the_allowlist_order_the_rest_dropped() -> None:
    block = b"X-Mailer: secret\r\nSubject: Hello\r\nFrom: a@example.org\r\nReceived: from x\r\nSubject: again\r\n"
    assert shown_headers(block, ALLOWED, 300) == [ShownHeader("From", "a@example.org"), ShownHeader("Subject", "Hello")]
    assert shown_headers(block, ("subject",), 300) == [ShownHeader("subject", "Hello")]  # names match in any case


@pytest.mark.parametrize(
    "raw, shown",
    [
        (b"=?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <j@example.org>", "Jürgen Müller <j@example.org>"),
        (b"=?iso-8859-1?b?Q2Fm6Q==?=", "Café"),
        ("Grüße".encode(), "Grüße"),  # 8-bit UTF-8 without encoded words
        (b"=?utf-8?q?line_one=0D=0AX-Injected:_yes?=", "line one X-Injected: yes"),  # CR/LF inside a value
        (b"folded\r\n   over\r\n\tlines", "folded over lines"),
        (b"=?x-unknown?q?abc?=", "=?x-unknown?q?abc?="),  # an unknown charset stays as written
    ],
)
def test_values_are_decoded_onto_one_line(raw: bytes, shown: str) -> None:
    assert shown_headers(b"Subject: " + raw + b"\r\n", ("Subject",), 300) == [ShownHeader("Subject", shown)]


def test_values_are_cut_to_the_length() -> None:
    assert one_line("x" * 400, 50) == "x" * 49 + "…"
    assert len(one_line("x" * 400, 50)) == 50
    assert one_line("a\x00b\u2028c\x1bd", 50) == "a b c d"


def test_notice_shows_markup_as_text() -> None:
    plain, html = notice("acme-1a2b3c@mail.example.com", [ShownHeader("Subject", "<b>hi</b> & <script>x</script>")])
    assert "Subject: <b>hi</b> & <script>x</script>" in plain
    assert "&lt;b&gt;hi&lt;/b&gt; &amp; &lt;script&gt;" in html
    assert "<script>" not in html and "<b>hi" not in html
    assert "headers only" in plain


def test_notice_without_any_shown_header_says_so() -> None:
    plain, _ = notice("a@b", [])
    assert "none of the shown headers" in plain


@pytest.mark.parametrize(
    "name, local",
    [
        ("Acme", "acme-a1b2c3"),
        ("Ünïcode Tëam", "unicode-team-a1b2c3"),
        ("!!!", "team-a1b2c3"),
        ("A very long team name that goes on and on", "a-very-long-team-name-th-a1b2c3"),
    ],
)
def test_address_is_the_team_name_and_a_random_part(name: str, local: str) -> None:
    assert address_local_part(name, "a1b2c3") == local


@pytest.mark.parametrize(
    "address, local",
    [
        ("acme-a1b2c3@mail.example.com", "acme-a1b2c3"),
        ("<Acme-A1B2C3@MAIL.example.com>", "acme-a1b2c3"),
        ("acme-a1b2c3@other.example.com", None),
        ("no-domain", None),
        ("bad'local@mail.example.com", None),
        ("@mail.example.com", None),
    ],
)
def test_recipients_are_team_addresses_at_the_mail_domain_only(address: str, local: str | None) -> None:
    assert recipient_local_part(address, "mail.example.com") == local
