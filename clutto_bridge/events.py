"""Turn Matrix events into bridge actions: accept invites, follow team membership, run commands.

Events enter here (beside ``commands/`` and ``web/``) and become calls of the domain in
``domain/``. The appservice hands each event over from its durable inbox. Membership and
settings are handled at once. A message goes to ``commands.processor``, which takes it from
there to the reply; a command may take seconds (creating rooms), so ``handle`` hands it back
as work that runs in the room's lane (``jobs/inbox.py``), in order, and only then is the
event marked done. Work that needs no order (a welcome, a profile update) starts in the
background of the same ``InboxWork``, which owns every task in flight and drains them on stop. A command the bridge was stopped in the middle of runs again on the
next start, so every command is safe to run twice: its effects are keyed by its event id or
are the same when repeated, and its replies are sent with transaction ids derived from that
event id, which the homeserver does not apply twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from mautrix.errors import MatrixRequestError
from mautrix.types import Event, EventType, Membership, MemberStateEventContent, StateEvent

from clutto_bridge.commands.processor import CommandProcessor
from clutto_bridge.commands.registry import reply_txn_id
from clutto_bridge.context import Services
from clutto_bridge.db.team import Team, TeamState
from clutto_bridge.domain.formatting import prose
from clutto_bridge.jobs.inbox import InboxWork
from clutto_bridge.metrics import Metrics
from clutto_bridge.policy.integrations import WIDGET_EVENT_TYPES

log = logging.getLogger("clutto.events")

SPACE_CHILD = "m.space.child"

# How long the bot waits for a key it asked a sender's devices for.
KEY_REQUEST_S = 30.0
UNREADABLE = (
    "I could not read your message: it is encrypted, and your app has not shared its key with my device yet. "
    "I asked your app for it, and I answer as soon as it arrives. If nothing happens, send the message again."
)


def _member(content: object) -> MemberStateEventContent | None:
    """A membership event's content as mautrix parses it; None for anything else (no content)."""
    return content if isinstance(content, MemberStateEventContent) else None


class EventDispatcher:
    def __init__(self, ctx: Services, work: InboxWork, metrics: Metrics | None = None) -> None:
        self.ctx = ctx
        self.commands = CommandProcessor(ctx, metrics)
        self.homeserver = ctx.homeserver
        # Starts the background work of an event; it owns the tasks (drained on stop).
        self.work = work

    @property
    def bot_mxid(self) -> str:
        return self.homeserver.bot_mxid

    async def handle(self, evt: Event) -> Awaitable[None] | None:
        """Handle ``evt``; a command is handed back as work to run in its room's lane."""
        work = None
        try:
            if evt.type == EventType.ROOM_MEMBER:
                await self._membership(evt)
            elif evt.type == EventType.ROOM_POWER_LEVELS and evt.sender != self.bot_mxid:
                await self._power_levels_changed(evt)
            elif str(evt.type) in WIDGET_EVENT_TYPES and evt.sender != self.bot_mxid:
                await self._widget_changed(evt)
            elif str(evt.type) == SPACE_CHILD and evt.sender != self.bot_mxid and getattr(evt.content, "via", None):
                # A room added to a team's space (Element's "Add room"): joining it and giving it the
                # team's rules takes several requests, so it runs in the space's lane, like a command.
                work = self.ctx.added_rooms.child_added(evt.room_id, evt.state_key, evt.sender)
            if getattr(evt, "state_key", None) is None:
                await self._remember_references(evt)
            if evt.type == EventType.ROOM_MESSAGE and evt.sender != self.bot_mxid:
                work = self.commands.handle(evt)
            elif evt.type == EventType.ROOM_ENCRYPTED and evt.sender != self.bot_mxid:
                work = self._unreadable(evt)
        except Exception:
            log.exception("Failed to handle %s in %s", evt.type, evt.room_id)
        return work

    async def _membership(self, evt: StateEvent) -> None:
        content, before = _member(evt.content), _member(evt.prev_content)
        if content is None:
            return
        new = content.membership
        previous = before.membership if before else None
        if evt.state_key == self.bot_mxid:
            if new == Membership.INVITE:
                await self._accept_invite(evt)
            elif new in (Membership.LEAVE, Membership.BAN):
                await self.ctx.notices.chat_closed(evt.room_id)
            return
        if (
            new in (Membership.LEAVE, Membership.BAN)
            and await self.ctx.notices.chat_owner(evt.room_id) == evt.state_key
        ):
            # The user left their chat with the bot: the next message to them opens a new
            # one, rather than going into a room nobody reads.
            await self.ctx.notices.chat_closed(evt.room_id)
            self.work.start(self.homeserver.leave(evt.room_id))
            return
        await self.ctx.members.membership_changed(
            evt.room_id, evt.state_key, str(new), str(previous) if previous else None
        )
        team = await self.ctx.teams.for_room(evt.room_id)
        if team and team.state == TeamState.ACTIVE:
            await self.ctx.integrations.check_membership(team, evt.room_id, evt.state_key, str(new), evt.sender)
            if new == Membership.JOIN:
                await self._profile_event(team, evt, joined=previous != Membership.JOIN)
            elif new in (Membership.LEAVE, Membership.BAN) and evt.room_id == team.space_id:
                self.work.start(self.ctx.profiles.unpublish(team, evt.state_key))

    async def _profile_event(self, team: Team, evt: StateEvent, joined: bool) -> None:
        """A join, or a new name or avatar in a team room: welcome and apply the profile policy."""
        user_id = evt.state_key
        if await self.ctx.teams.role_of(team, user_id) is None:
            return
        content, before = _member(evt.content), _member(evt.prev_content) if not joined else None
        if content is None:
            return
        name, avatar = content.displayname, content.avatar_url
        if before is not None and (before.displayname, before.avatar_url) == (name, avatar):
            return
        if joined and evt.room_id == team.space_id:
            self.work.start(self.ctx.onboarding.welcome(team, user_id))
        self.work.start(
            self.ctx.profiles.member_event(team, evt.room_id, user_id, name, str(avatar) if avatar else None)
        )

    async def _remember_references(self, evt: Event) -> None:
        content = evt.content.serialize() if hasattr(evt.content, "serialize") else {}
        await self.ctx.retention.remember_references(evt.room_id, evt.event_id, evt.timestamp, content)

    async def _power_levels_changed(self, evt: StateEvent) -> None:
        """Power levels are the team's settings: a change made by hand in a client is put back."""
        team = await self.ctx.teams.for_room(evt.room_id)
        if team and team.state == TeamState.ACTIVE:
            changed = await self.ctx.members.sync_power_levels(team, only_room=evt.room_id, actor=evt.sender)
            if changed:
                log.info("Put back power levels in %s changed by %s", evt.room_id, evt.sender)

    async def _widget_changed(self, evt: Event) -> None:
        team = await self.ctx.teams.for_room(evt.room_id)
        if team and team.state == TeamState.ACTIVE:
            content = evt.content.serialize() if hasattr(evt.content, "serialize") else dict(evt.content)
            await self.ctx.integrations.check_widget(
                team, evt.room_id, str(evt.type), evt.state_key, content, evt.sender
            )

    async def _accept_invite(self, evt: StateEvent) -> None:
        try:
            await self.homeserver.join(evt.room_id)
        except MatrixRequestError as e:
            log.warning("Could not accept the invite of %s to %s: %s", evt.sender, evt.room_id, e)
            return
        content = _member(evt.content)
        if not (content and content.is_direct):
            await self.ctx.added_rooms.invited(evt.room_id, evt.sender)
            return
        if content.is_direct:
            replaced = await self.ctx.notices.chat_opened(evt.room_id, evt.sender)
            text = await self.ctx.onboarding.greeting(evt.sender) + (
                " From now on I write to you here, and I closed our older chat." if replaced else ""
            )
            greeting = prose(text, code_marks=False)
            await self.homeserver.send_notice(
                evt.room_id,
                greeting.plain,
                greeting.html,
                mentions=greeting.mentions,
                txn_id=reply_txn_id(evt.event_id, 0),
            )

    async def _unreadable(self, evt: Event) -> None:
        """An encrypted message whose key did not come: the sender's devices are asked for it, and
        in the chat with the bot (where every message is for the bot) the sender is told so. A
        message that becomes readable is handled as if it had just arrived."""
        log.warning(
            "No key for the encrypted event %s of %s in %s; asking the sender's devices",
            evt.event_id,
            evt.sender,
            evt.room_id,
        )
        if await self.ctx.notices.chat_owner(evt.room_id) == evt.sender:
            told = prose(UNREADABLE, code_marks=False)
            await self.homeserver.send_notice(
                evt.room_id,
                told.plain,
                told.html,
                mentions=[],
                reply_to=evt.event_id,
                txn_id=reply_txn_id(evt.event_id, 0) + ".unreadable",
            )
        readable = await self.homeserver.request_key(evt, KEY_REQUEST_S)
        if readable is None:
            log.warning("The key of %s in %s did not come within %.0fs", evt.event_id, evt.room_id, KEY_REQUEST_S)
            return
        work = await self.handle(readable)
        if work is not None:
            await work
