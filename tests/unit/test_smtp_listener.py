"""The SMTP listener: recipients checked at RCPT TO, size at DATA, the message handed to the
domain in memory and never logged (a stand-in for the domain; the integration tests run the
whole path on a real Synapse and both databases)."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from email.message import EmailMessage

import pytest

from clutto_bridge.config import EmailSettings
from clutto_bridge.demo.synapse import free_port
from clutto_bridge.smtp import SmtpListener

CANARY = "canary-3f9d1c-body"


class StandInEmail:
    def __init__(self) -> None:
        self.delivered: list[tuple[list[str], bytes]] = []

    async def recipient(self, address: str):
        return object() if address.lower() == "team-abc@mail.test" else None

    async def deliver(self, recipients: list[str], message: bytes) -> int:
        self.delivered.append((recipients, message))
        return 1


@pytest.fixture
async def listener():
    config = EmailSettings(
        enabled=True,
        hostname="127.0.0.1",
        port=free_port(),
        domain="mail.test",
        max_size_kib=4,
        headers=("From", "Subject"),
        header_max_length=100,
    )
    email = StandInEmail()
    smtp = SmtpListener(email, config)  # type: ignore[arg-type]
    await smtp.start()
    yield smtp, email
    await smtp.stop()


def _message(to: str, body: str = f"body {CANARY}") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "sender@example.org"
    message["To"] = to
    message["Subject"] = "Hello"
    message.set_content(body)
    return message


def _send(port: int, message: EmailMessage) -> dict:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        return client.send_message(message)


async def test_mail_to_a_team_address_is_handed_over_and_not_logged(listener, caplog: pytest.LogCaptureFixture) -> None:
    smtp, email = listener
    caplog.set_level(logging.DEBUG)
    logging.getLogger().setLevel(logging.DEBUG)
    refused = await asyncio.to_thread(_send, smtp.port, _message("Team-ABC@mail.test"))
    assert refused == {}
    [(recipients, content)] = email.delivered
    assert recipients == ["Team-ABC@mail.test"] and b"Subject: Hello" in content
    assert CANARY not in caplog.text


async def test_unknown_recipient_is_refused_with_550(listener) -> None:
    smtp, email = listener
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await asyncio.to_thread(_send, smtp.port, _message("nobody@mail.test"))
    [(code, _)] = refused.value.recipients.values()
    assert code == 550
    assert email.delivered == []


async def test_oversized_mail_is_refused_with_552(listener) -> None:
    smtp, email = listener
    with pytest.raises((smtplib.SMTPDataError, smtplib.SMTPSenderRefused)) as refused:
        await asyncio.to_thread(_send, smtp.port, _message("team-abc@mail.test", "x" * 5000))
    assert refused.value.smtp_code == 552
    assert email.delivered == []


async def test_oversized_mail_without_declared_size_is_refused_at_data_with_552(listener) -> None:
    smtp, email = listener

    def send_raw() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", smtp.port, timeout=10) as client:
            client.helo("client.test")  # HELO, not EHLO: no SIZE parameter on MAIL FROM
            client.mail("sender@example.org")
            client.rcpt("team-abc@mail.test")
            return client.data(b"Subject: big\r\n\r\n" + (b"y" * 70 + b"\r\n") * 100)

    code, _ = await asyncio.to_thread(send_raw)
    assert code == 552
    assert email.delivered == []


async def test_stop_ends_open_sessions_and_frees_the_port(listener) -> None:
    smtp, email = listener
    port = smtp.port
    client = await asyncio.to_thread(smtplib.SMTP, "127.0.0.1", port, timeout=10)
    try:
        await smtp.stop()
        with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError)):
            await asyncio.to_thread(client.noop)
    finally:
        client.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.to_thread(smtplib.SMTP, "127.0.0.1", port, timeout=5)
