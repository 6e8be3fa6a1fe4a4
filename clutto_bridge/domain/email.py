"""A team's email address (P16): mail to it becomes a notice of its headers in the team's
``email`` room.

The owner and admins switch the address on and off. The SMTP listener (``smtp.py``) asks
here whether a recipient is a team's address, and hands over the message's bytes; only the
header block is parsed (``policy.mail``), and the bytes are dropped when ``deliver``
returns. Nothing of a message is stored by the bridge or logged: the notice in the team's
room is the one copy, and it is team data like any other (retention, holds, export).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field

from clutto_bridge.clock import Clock
from clutto_bridge.config import EmailSettings
from clutto_bridge.db.email import EmailStore, TeamAddress
from clutto_bridge.db.team import RoomStore, Team, TeamState, TeamStore
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.errors import NotAllowed
from clutto_bridge.domain.members import MemberService
from clutto_bridge.domain.service import TeamService
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.policy import mail
from clutto_bridge.policy.audit_actions import AuditAction

log = logging.getLogger("clutto.email")

ROOM_NAME = "email"


@dataclass(frozen=True)
class EmailStatus:
    enabled: bool
    address: str | None  # None until the team switched email on once
    room_id: str | None


@dataclass(kw_only=True, eq=False, repr=False)
class EmailService:
    store: EmailStore
    team_store: TeamStore
    members: MemberService
    teams: TeamService
    rooms: RoomStore
    homeserver: Homeserver
    audit: AuditLog
    config: EmailSettings
    clock: Clock
    _room_locks: dict[str, asyncio.Lock] = field(init=False, default_factory=dict)

    def full_address(self, address: TeamAddress) -> str:
        return f"{address.local_part}@{self.config.domain}"

    def _status(self, address: TeamAddress | None) -> EmailStatus:
        if address is None:
            return EmailStatus(False, None, None)
        return EmailStatus(address.enabled and self.config.enabled, self.full_address(address), address.room_id)

    async def status(self, team: Team, *, actor: str | None) -> EmailStatus:
        await self.teams.require_manager(team, actor)
        return self._status(await self.store.of_team(team.id))

    async def switch(self, team: Team, enabled: bool, *, actor: str | None) -> EmailStatus:
        """Switch the team's address on (made on first use, kept afterwards) or off."""
        await self.teams.require_manager(team, actor)
        if enabled and not self.config.enabled:
            raise NotAllowed("Email is not enabled on this bridge; the operator switches it on (email.enabled).")
        now = self.clock.now_ms()
        address = await self.store.of_team(team.id)
        if address is None:
            if not enabled:
                return self._status(None)
            address = TeamAddress(team.id, mail.address_local_part(team.name, secrets.token_hex(3)), True, None, now)
            await self.store.insert(address)
        elif address.enabled != enabled:
            await self.store.set_enabled(address, enabled, now)
        else:
            return self._status(address)
        action = AuditAction.EMAIL_ENABLED if enabled else AuditAction.EMAIL_DISABLED
        await self.audit.record(team, actor, action, self.full_address(address))
        return self._status(address)

    # --- mail from the SMTP listener ------------------------------------------------------------

    async def recipient(self, address: str) -> Team | None:
        """The team whose switched-on address ``address`` is, or None (the listener answers 550)."""
        if not self.config.enabled:
            return None
        local_part = mail.recipient_local_part(address, self.config.domain)
        found = await self.store.by_local_part(local_part) if local_part else None
        if found is None or not found.enabled:
            return None
        team = await self.team_store.get(found.team_id)
        return team if team is not None and team.state == TeamState.ACTIVE else None

    async def deliver(self, recipients: list[str], message: bytes) -> int:
        """Post the allowlisted headers of ``message`` to the email room of each recipient's
        team (once per team); return how many teams got it. The body is never parsed."""
        headers = mail.shown_headers(mail.header_block(message), self.config.headers, self.config.header_max_length)
        del message  # from here on only the shown headers exist
        delivered: set[str] = set()
        for recipient in recipients:
            team = await self.recipient(recipient)
            if team is None or team.id in delivered:
                continue
            address = await self.store.of_team(team.id)
            if address is None:  # the address was removed since the recipient was resolved
                continue
            room_id = await self._email_room(team, address)
            plain, html = mail.notice(self.full_address(address), headers)
            await self.homeserver.send_notice(room_id, plain, html, mentions=[])
            # Shared with the team's room: recorded, by count only (the header values stay out of the bridge).
            await self.audit.record(team, None, AuditAction.EMAIL_POSTED, room_id, headers=len(headers))
            delivered.add(team.id)
            log.info("Email for team %s posted (%d header(s) shown)", team.id, len(headers))
        return len(delivered)

    async def _email_room(self, team: Team, address: TeamAddress) -> str:
        """The team's email room: a group room in its space like the others, made on first use
        (and again if it was archived), with the team's members and power levels."""
        lock = self._room_locks.setdefault(team.id, asyncio.Lock())
        async with lock:
            if address.room_id:
                room = await self.rooms.get(address.room_id)
                if room is not None and room.archived_at is None:
                    return room.room_id
            room = await self.teams.add_group_room(team, ROOM_NAME)
            await self.store.set_room(address, room.room_id)
            for member in await self.members.active(team):
                await self.homeserver.invite_once(room.room_id, member.user_id)
            await self.members.sync_power_levels(team, only_room=room.room_id)
            await self.audit.record(team, None, AuditAction.ROOM_CREATED, room.room_id, name=ROOM_NAME)
            log.info("Created the email room %s of team %s", room.room_id, team.id)
            return room.room_id
