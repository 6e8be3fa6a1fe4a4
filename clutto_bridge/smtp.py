"""The SMTP listener (P16): mail for team addresses enters here, like commands and API calls.

aiosmtpd speaks SMTP on the bridge's own event loop. A recipient that is not a switched-on
team address is refused at ``RCPT TO`` (550); a message over ``email.max_size_kib`` is
refused by aiosmtpd itself (552, at ``MAIL FROM`` when the client declares its size, else at
the end of ``DATA``, having kept none of the excess). An accepted message is handed to the
domain (``teams.email``) as bytes in memory and dropped when it returns: it is never
written to a file, the database or the log. aiosmtpd logs every line it reads at DEBUG
(the body too), so its logger is held at WARNING whatever the bridge's level is.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from aiosmtpd.smtp import SMTP, Envelope, Session

from clutto_bridge.config import EmailSettings
from clutto_bridge.domain.email import EmailService

log = logging.getLogger("clutto.smtp")

UNKNOWN_RECIPIENT = "550 5.1.1 No team takes mail at this address"
TRY_LATER = "451 4.3.0 The message could not be posted; try again later"


class TeamMailHandler:
    """aiosmtpd's hooks: check each recipient, then hand the message to the domain."""

    def __init__(self, email: EmailService) -> None:
        self.email = email

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if await self.email.recipient(address) is None:
            return UNKNOWN_RECIPIENT
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = envelope.original_content or b""
        envelope.content = envelope.original_content = None  # the only copy is ``message`` now
        try:
            await self.email.deliver(list(envelope.rcpt_tos), message)
        except Exception as e:
            # Only the kind of failure: its text could quote a header.
            log.error("Posting an email failed: %s", type(e).__name__)
            return TRY_LATER
        finally:
            del message
        return "250 2.0.0 OK: the headers were posted, the body was dropped"


class SmtpListener:
    def __init__(self, email: EmailService, config: EmailSettings) -> None:
        self.handler = TeamMailHandler(email)
        self.config = config
        self._server: asyncio.Server | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def _protocol(self) -> SMTP:
        session = SMTP(
            self.handler,
            data_size_limit=self.config.max_size_kib * 1024,
            hostname=self.config.domain,
            ident="clutto-bridge",
            loop=asyncio.get_running_loop(),
        )
        self._sessions.add(session)
        return session

    async def start(self) -> None:
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        c = self.config
        self._server = await asyncio.get_running_loop().create_server(self._protocol, c.hostname, c.port)
        log.info("Taking mail for *@%s on %s:%d (headers only)", c.domain, c.hostname, c.port)

    async def stop(self) -> None:
        """Stop listening and end open sessions, before the database closes. A message whose
        transaction had not ended gets no answer, so its sender keeps it and tries again."""
        if self._server is not None:
            self._server.close()
            for session in list(self._sessions):
                if session.transport is not None:
                    session.transport.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def port(self) -> int | None:
        """The port actually listened on (the configured one, or the one picked for port 0)."""
        return self._server.sockets[0].getsockname()[1] if self._server else None
