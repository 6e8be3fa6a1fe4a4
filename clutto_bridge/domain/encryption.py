"""Turning end-to-end encryption on in team rooms that exist without it (P12, issue 24).

Under ``policy.encryption: require`` the bridge does it on start for every active team; under
``default`` an owner or admin asks for it (``rooms encrypt``, the provisioning API). Matrix has
no way to turn a room's encryption off again, so the owner is told first, in their chat with
the bot, which rooms and that it cannot be undone; then the bot sets ``m.room.encryption``.
A room that is encrypted already is left as it is, so running it again changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from clutto_bridge.db.team import RoomKind, RoomStore, Team, TeamRoom
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.errors import NotAllowed
from clutto_bridge.domain.notices import NoticeService
from clutto_bridge.domain.service import TeamService
from clutto_bridge.matrix.errors import MatrixRequestError
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.policy.audit_actions import AuditAction
from clutto_bridge.policy.encryption import ENCRYPTION_EVENT, encrypts_existing_rooms

log = logging.getLogger("clutto.encryption")


def owner_notice(team: Team, rooms: list[TeamRoom], asked_by: str | None) -> str:
    """What the owner reads before the rooms are encrypted."""
    shown = [f"**{room.name}**" for room in rooms if room.kind != RoomKind.DIRECT]
    direct = len(rooms) - len(shown)
    if direct:  # who talks to whom privately is not the owner's to read here
        shown.append(f"{direct} direct chat(s) between members")
    names = ", ".join(shown)
    why = f"{asked_by} asked for it" if asked_by else "the operator's policy requires it"
    return (
        f"**Encryption is being turned on** in {len(rooms)} room(s) of {team.name}: {names} ({why}). "
        "From now on what members write there is end-to-end encrypted: the homeserver stores only ciphertext. "
        "**This cannot be undone**: Matrix has no way to turn a room's encryption off again. Apps that do not "
        "encrypt can no longer read or write in these rooms."
    )


@dataclass(kw_only=True, eq=False, repr=False)
class RoomEncryption:
    teams: TeamService
    mode: str  # policy.encryption
    rooms: RoomStore
    notices: NoticeService
    homeserver: Homeserver
    audit: AuditLog

    async def encrypt_team(self, team: Team, *, actor: str | None) -> list[TeamRoom]:
        """Encrypt every room of the team that is not yet (``rooms encrypt``); the rooms encrypted."""
        await self.teams.require_manager(team, actor)
        if self.teams.room_encryption(team) is None:
            raise NotAllowed("Encryption is switched off on this bridge (policy.encryption: off); ask the operator.")
        return await self.encrypt_rooms(team, await self.rooms.of_team(team.id), actor=actor)

    async def encrypt_rooms(self, team: Team, rooms: list[TeamRoom], *, actor: str | None) -> list[TeamRoom]:
        """Tell the owner, then encrypt those of ``rooms`` that are not encrypted yet."""
        content = self.teams.room_encryption(team)
        if content is None:
            return []
        missing = [room for room in rooms if not await self.homeserver.state(room.room_id, ENCRYPTION_EVENT)]
        if not missing:
            return []
        await self.notices.tell(team.owner, owner_notice(team, missing, actor))
        for room in missing:
            await self.homeserver.turn_on_encryption(room.room_id, content)
        await self.audit.record(
            team, actor, AuditAction.ROOMS_ENCRYPTED, team.space_id, rooms=[room.room_id for room in missing]
        )
        log.info("Turned encryption on in %d room(s) of team %s", len(missing), team.id)
        return missing

    async def encrypt_existing(self) -> int:
        """Under ``require``, once per start: every active team's unencrypted rooms; how many rooms."""
        if not encrypts_existing_rooms(self.mode):
            return 0
        done = 0
        for team in await self.teams.active():
            try:
                done += len(await self.encrypt_rooms(team, await self.rooms.of_team(team.id), actor=None))
            except MatrixRequestError as e:  # one team's unreachable room must not hold up the others
                log.warning("Could not turn encryption on in the rooms of team %s: %s", team.id, e)
        return done
