"""The one way out to the homeserver for the domain: rooms, state, messages, media, history.

It wraps the bot's mautrix intent (and, for the few admin-only steps, the Synapse admin
client), so retries and fallbacks live in one place and ``domain/`` never builds a request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any, cast

from aiohttp import ClientResponseError
from mautrix.api import Method, Path
from mautrix.appservice import IntentAPI
from mautrix.errors import MatrixRequestError, MatrixUnknownRequestError
from mautrix.types import (
    JSON,
    ContentURI,
    EncryptedEvent,
    EncryptedFile,
    EventType,
    FileInfo,
    MediaMessageEventContent,
    Membership,
    MemberStateEventContent,
    MessageType,
    RoomCreatePreset,
    RoomID,
    SerializerError,
    UserID,
)

from clutto_bridge.matrix import spaces
from clutto_bridge.matrix.admin import AdminUnavailable, SynapseAdmin
from clutto_bridge.matrix.crypto import BotDevice, UnreadableAttachment, decrypt_file, encrypt_file

log = logging.getLogger("clutto.homeserver")


def _state_type(event_type: str) -> EventType:
    return EventType.find(event_type, EventType.Class.STATE)


class Homeserver:
    def __init__(
        self, bot: Callable[[], IntentAPI], admin: SynapseAdmin, address: str, device: BotDevice | None = None
    ) -> None:
        self._bot = bot
        self.admin = admin
        self.address = address.rstrip("/")
        # The bot's E2EE device: what it sends into an encrypted room is encrypted, never plaintext.
        self.device = device

    @property
    def bot(self) -> IntentAPI:
        return self._bot()

    @property
    def bot_mxid(self) -> str:
        return self._bot().mxid

    # --- the bot itself ---------------------------------------------------------------------

    async def ensure_bot(self, displayname: str) -> None:
        bot = self.bot
        await bot.ensure_registered()
        try:
            await bot.set_displayname(displayname)
        except MatrixRequestError as e:
            log.warning("Could not set the bot's display name: %s", e)

    async def join(self, room_id: str) -> None:
        """Join once: a refused join (the inviter left, the room is gone) is final. mautrix
        would try it 4 more times over 100 s, holding the room's lane; a server error or a
        rate limit is still retried by the HTTP client (``default_http_retry_count``)."""
        await self.bot.join_room(RoomID(room_id), max_retries=0)
        await self._learn_encryption(room_id)

    async def _learn_encryption(self, room_id: str) -> None:
        """Whether a room the bot just joined is encrypted: its m.room.encryption came before the
        bot was in the room, so no transaction brought it (the state store keeps the answer)."""
        try:
            await self.bot.get_state_event(RoomID(room_id), EventType.ROOM_ENCRYPTION)
        except MatrixRequestError as e:
            if e.http_status != 404:
                log.warning("Could not read whether %s is encrypted: %s", room_id, e)

    async def leave(self, room_id: str) -> None:
        await self.bot.leave_room(RoomID(room_id))

    async def capabilities(self) -> dict[str, Any]:
        try:
            return (await self.bot.api.request(Method.GET, Path.v3.capabilities)).get("capabilities", {})
        except MatrixRequestError:
            return {}

    # --- rooms ------------------------------------------------------------------------------

    async def create_space(self, **kwargs: Any) -> str:
        return await spaces.create_space(self.bot, **kwargs)

    async def create_group_room(self, *, encryption: dict[str, Any] | None = None, **kwargs: Any) -> str:
        room_id = await spaces.create_group_room(self.bot, encryption=encryption, **kwargs)
        await self._created_encrypted(room_id, encryption)
        return room_id

    async def _created_encrypted(self, room_id: str, encryption: dict[str, Any] | None) -> None:
        """Note a room the bot just made encrypted at once: its first message may go out before
        the transaction with its m.room.encryption event arrives, and must not go in plaintext."""
        if encryption:
            await self.bot.state_store.set_encryption_info(RoomID(room_id), encryption)

    async def link_child(self, space_id: str, room_id: str, server_name: str) -> None:
        await spaces.link_child(self.bot, RoomID(space_id), RoomID(room_id), server_name)

    async def unlink_child(self, space_id: str, room_id: str) -> None:
        await self.bot.send_state_event(RoomID(space_id), spaces.SPACE_CHILD, {}, state_key=room_id)

    async def create_direct_chat(
        self, users: list[str], *, room_version: str, retention_ms: int, encryption: dict[str, Any] | None = None
    ) -> str:
        """A private direct room between members, created and administered by the bot."""
        bot = self.bot
        room_id = await bot.create_room(
            preset=RoomCreatePreset.PRIVATE,
            is_direct=True,
            invitees=users,
            room_version=room_version,
            power_level_override={"users": {bot.mxid: spaces.BOT_LEVEL}, "invite": 100, "state_default": 100},
            initial_state=[spaces.retention_state(retention_ms), *spaces.encryption_state(encryption)],
        )
        await self._created_encrypted(room_id, encryption)
        return room_id

    async def create_bot_chat(self, user_id: str, *, encryption: dict[str, Any] | None = None) -> str:
        """A direct chat between the user and the bot. The user is not made an equal (no trusted
        preset), so the bot can withdraw the invite when the user starts a chat of their own."""
        room_id = await self.bot.create_room(
            preset=RoomCreatePreset.PRIVATE,
            is_direct=True,
            invitees=[user_id],
            initial_state=spaces.encryption_state(encryption),
        )
        await self._created_encrypted(room_id, encryption)
        return room_id

    async def invite_once(self, room_id: str, user_id: str) -> None:
        await spaces.invite_once(self.bot, RoomID(room_id), UserID(user_id))

    async def membership(self, room_id: str, user_id: str) -> str | None:
        """The user's membership in the room ("invite", "join", "leave", ...); None if they never had one."""
        content = await self.state(room_id, "m.room.member", user_id)
        return content.get("membership") if content else None

    async def joined_rooms(self) -> list[str]:
        """Every room the bot is in."""
        return [str(room_id) for room_id in await self.bot.get_joined_rooms()]

    async def room_state(self, room_id: str) -> list[dict[str, Any]] | None:
        """The room's whole current state as raw events; None if the bot may not read it."""
        try:
            # A list of events (mautrix annotates every answer as an object).
            return cast(list[dict[str, Any]], await self.bot.api.request(Method.GET, Path.v3.rooms[room_id].state))
        except MatrixRequestError:
            return None

    async def kick(self, room_id: str, user_id: str, reason: str) -> bool:
        """Kick; False when there was nobody to kick (left, never joined) or it was refused."""
        try:
            await self.bot.kick_user(RoomID(room_id), UserID(user_id), reason=reason)
        except MatrixRequestError as e:
            log.debug("Kicking %s from %s: %s", user_id, room_id, e)
            return False
        if self.device is not None:
            # The next message gets a new session without them, whenever the kick's own event
            # comes back in a transaction (which ends the session too).
            await self.device.end_session(room_id)
        return True

    # --- state ------------------------------------------------------------------------------

    async def set_state(self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = "") -> None:
        await self.bot.send_state_event(RoomID(room_id), _state_type(event_type), content, state_key=state_key)

    async def state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any] | None:
        """The content of a state event, or None when the room has none (or we may not see it)."""
        try:
            return await self.bot.api.request(Method.GET, Path.v3.rooms[room_id].state[event_type][state_key])
        except MatrixRequestError:
            return None

    async def create_event(self, room_id: str) -> dict[str, Any]:
        """The room's whole ``m.room.create`` event (its sender is the creator in version 12 rooms)."""
        return await self.bot.api.request(
            Method.GET, Path.v3.rooms[room_id].state["m.room.create"][""], query_params={"format": "event"}
        )

    async def turn_on_encryption(self, room_id: str, content: dict[str, Any]) -> None:
        """Make an existing room encrypted; from the next message on the bot writes ciphertext there."""
        await self.set_state(room_id, "m.room.encryption", content)
        await self._created_encrypted(room_id, content)

    async def power_levels(self, room_id: str) -> dict[str, Any]:
        return await self.bot.api.request(Method.GET, Path.v3.rooms[room_id].state["m.room.power_levels"])

    async def set_power_levels(self, room_id: str, content: dict[str, Any]) -> None:
        await self.bot.send_state_event(RoomID(room_id), EventType.ROOM_POWER_LEVELS, content)

    # --- messages and media -------------------------------------------------------------------

    async def send_notice(
        self,
        room_id: str,
        text: str,
        html: str | None = None,
        *,
        mentions: Sequence[str] | None = None,
        reply_to: str | None = None,
        thread_root: str | None = None,
        txn_id: str | None = None,
    ) -> str:
        """A notice from the bot: ``text`` is the plain body, ``html`` the formatted one.

        ``mentions`` (user IDs) go into ``m.mentions``, so only they are notified; ``reply_to``
        makes it a reply to that event, inside the thread of ``thread_root`` when given.
        ``txn_id`` makes a repeated send (of the same message, by a command run again) one
        message: the homeserver answers it with the event it made the first time.
        """
        content: dict[str, Any] = {"msgtype": "m.notice", "body": text}
        if html is not None:
            content |= {"format": "org.matrix.custom.html", "formatted_body": html}
        if mentions is not None:
            content["m.mentions"] = {"user_ids": list(mentions)} if mentions else {}
        content |= _relation(reply_to, thread_root)
        return await self._send(room_id, content, txn_id)

    async def _send(self, room_id: str, content: Any, txn_id: str | None) -> str:
        """Send an ``m.room.message``: as Megolm ciphertext where the room is encrypted."""
        if self.device is not None and await self.device.is_encrypted(room_id):
            encrypted = await self.device.encrypt(
                room_id, EventType.ROOM_MESSAGE, content, lambda: self._readers(room_id)
            )
            return await self.bot.send_message_event(
                RoomID(room_id), EventType.ROOM_ENCRYPTED, encrypted, txn_id=txn_id
            )
        return await self.bot.send_message_event(RoomID(room_id), EventType.ROOM_MESSAGE, content, txn_id=txn_id)

    async def _readers(self, room_id: str) -> list[str]:
        """Who may read what the bot writes now: the room's joined and invited members, as the
        homeserver has them (one request, when a new session is shared)."""
        members = await self.bot.get_members(RoomID(room_id))
        return [
            m.state_key
            for m in members
            if isinstance(m.content, MemberStateEventContent)
            and m.content.membership in (Membership.JOIN, Membership.INVITE)
            and m.state_key != self.bot_mxid
        ]

    async def is_encrypted(self, room_id: str) -> bool:
        return self.device is not None and await self.device.is_encrypted(room_id)

    async def request_key(self, event: Any, timeout: float) -> Any:
        """Ask the sender's devices for an unreadable event's key; the event decrypted if it came."""
        return await self.device.request_key(event, timeout) if self.device is not None else None

    async def send_file(
        self,
        room_id: str,
        data: bytes,
        *,
        name: str,
        mime_type: str,
        reply_to: str | None = None,
        thread_root: str | None = None,
        txn_id: str | None = None,
    ) -> None:
        """Upload ``data`` and send it as a file; ``reply_to``, ``thread_root`` and ``txn_id`` as
        for ``send_notice`` (a repeat uploads again but sends no second message)."""
        info = FileInfo(mimetype=mime_type, size=len(data))
        if self.device is not None and await self.device.is_encrypted(room_id):
            # The homeserver's media store gets the ciphertext; the key travels in the encrypted event.
            ciphertext, file = encrypt_file(data)
            file.url = await self.bot.upload_media(ciphertext, mime_type="application/octet-stream")
            content = MediaMessageEventContent(msgtype=MessageType.FILE, body=name, file=file, info=info)
        else:
            mxc = await self.bot.upload_media(data, mime_type=mime_type, filename=name)
            content = MediaMessageEventContent(msgtype=MessageType.FILE, body=name, url=mxc, info=info)
        await self._send(room_id, content.serialize() | _relation(reply_to, thread_root), txn_id)

    async def upload(self, data: bytes, *, name: str, mime_type: str) -> str:
        """Upload ``data`` as the bot; its ``mxc://`` URI."""
        return str(await self.bot.upload_media(data, mime_type=mime_type, filename=name))

    async def download(self, mxc: str | ContentURI | EncryptedFile) -> bytes:
        """The file's bytes, decrypted when it is an encrypted attachment (its key and hash given).
        A missing or refused file is a MatrixRequestError like any other refusal (mautrix lets the
        authenticated media API's aiohttp error through as it is)."""
        if isinstance(mxc, EncryptedFile):
            if not mxc.url:
                raise UnreadableAttachment("the encrypted file has no url")
            return decrypt_file(await self.download(mxc.url), mxc)
        try:
            return await self.bot.download_media(ContentURI(mxc))
        except ClientResponseError as e:
            raise MatrixUnknownRequestError(
                e.status,
                e.message,
                "M_NOT_FOUND" if e.status == 404 else "M_UNKNOWN",
                f"downloading {mxc} failed: {e.status} {e.message}",
            ) from e

    async def download_attachment(self, source: str | dict[str, Any]) -> bytes:
        """A file as a message refers to it: its ``url``, or an encrypted attachment's ``file``
        (url, key, iv, hashes, as the event carries it), decrypted. A file that does not decrypt
        raises UnreadableAttachment."""
        if isinstance(source, str):
            return await self.download(source)
        try:
            file = EncryptedFile.deserialize(JSON(source))
        except (SerializerError, KeyError, TypeError, ValueError):
            raise UnreadableAttachment("the encrypted file's key is malformed") from None
        if not file.url:
            raise UnreadableAttachment("the encrypted file has no url")
        return await self.download(file)

    async def decrypted(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """A raw ``m.room.encrypted`` event as its sender wrote it (type and content decrypted,
        the rest as the homeserver has it), with the bot's keys and without waiting for one;
        None when the bot has no key for it (or no device)."""
        if self.device is None:
            return None
        try:
            encrypted = EncryptedEvent.deserialize(JSON(event))
        except (SerializerError, KeyError, TypeError, ValueError):
            return None
        readable = await self.device.decrypt(encrypted, 0)
        if readable is None:
            return None
        return {**event, "type": str(readable.type), "content": readable.content.serialize()}

    async def profile(self, user_id: str) -> tuple[str | None, str | None]:
        """(display name, avatar URL) of a user; raises MatrixRequestError for an unknown one."""
        try:
            profile = await self.bot.get_profile(UserID(user_id))
        except MatrixRequestError as e:
            # A homeserver that shows profiles only to people sharing a room with the user
            # (limit_profile_requests_to_users_who_share_rooms, which doctor asks for) refuses
            # the bot before the user is in a team; the admin API still answers for local users.
            if e.http_status != 403 or user_id.split(":", 1)[-1] != self.bot.mxid.split(":", 1)[-1]:
                raise
            try:
                return await self.admin.account_profile(user_id)
            except AdminUnavailable:
                raise e from None
        return profile.displayname, (str(profile.avatar_url) if profile.avatar_url else None)

    # --- history --------------------------------------------------------------------------------

    async def page_forward(
        self, room_id: str, token: str | None, limit: int, *, skip_redactions: bool = False
    ) -> tuple[list[dict], str | None]:
        """One page of the room's timeline from the beginning (or ``token``) onwards.

        Returns the raw events and the token of the next page (None at the end). Raw JSON is
        used so redaction markers and relations are read exactly as the homeserver sent them.
        ``skip_redactions`` leaves redaction events out, which also spares Synapse a costly
        edit lookup per page in rooms with many redactions.
        """
        room_filter: dict[str, Any] = {"lazy_load_members": True}
        if skip_redactions:
            room_filter["not_types"] = ["m.room.redaction"]
        query = {"dir": "f", "limit": str(limit), "filter": json.dumps(room_filter)}
        if token:
            query["from"] = token
        data: dict[str, Any] = await self.bot.api.request(
            Method.GET, Path.v3.rooms[room_id].messages, query_params=query
        )
        events = data.get("chunk", [])
        # The end of the timeline is a missing ``end`` (the spec), not an empty chunk: after a
        # purge, a page can hold nothing (its events are gone) and the history go on after it.
        end = data.get("end")
        return events, end if end and end != token else None

    async def page_backward(
        self, room_id: str, token: str | None, limit: int, *, skip_redactions: bool = True
    ) -> tuple[list[dict], str | None]:
        """One page of the room's timeline from the end (or ``token``) backwards, newest first.

        Returns the raw events and the token of the next (older) page, None at the beginning
        of what the homeserver holds (a missing ``end``, per the spec). Redaction events are
        left out by default, as a sweep's reads never index them.
        """
        room_filter: dict[str, Any] = {"lazy_load_members": True}
        if skip_redactions:
            room_filter["not_types"] = ["m.room.redaction"]
        query = {"dir": "b", "limit": str(limit), "filter": json.dumps(room_filter)}
        if token:  # without ``from`` the homeserver starts at the end of the timeline
            query["from"] = token
        data: dict[str, Any] = await self.bot.api.request(
            Method.GET, Path.v3.rooms[room_id].messages, query_params=query
        )
        end = data.get("end")
        return data.get("chunk", []), end if end and end != token else None

    async def redact(self, room_id: str, event_id: str, reason: str) -> None:
        """Redact as the bot. The raw call skips mautrix's per-call power level lookup: the bot
        outranks everyone in team rooms by construction."""
        api = self.bot.api
        await api.request(Method.PUT, Path.v3.rooms[room_id].redact[event_id][api.get_txn_id()], {"reason": reason})

    # --- another user's account data ------------------------------------------------------------

    async def mark_direct(self, user_id: str, peer: str, room_id: str) -> None:
        """Add the room to the user's ``m.direct`` so every client lists it as a DM.

        Account data is the user's own: the admin API lends a short-lived token, which is
        logged out again at once.
        """
        try:
            token = await self.admin.login_as(user_id)
        except (AdminUnavailable, MatrixRequestError) as e:
            log.warning("Cannot mark %s as direct for %s: %s", room_id, user_id, e)
            return
        session = self.bot.api.session
        base = f"{self.address}/_matrix/client/v3"
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{base}/user/{user_id}/account_data/m.direct"
        try:
            async with session.get(url, headers=headers) as resp:
                direct = await resp.json() if resp.status == 200 else {}
            rooms = direct.setdefault(peer, [])
            if room_id not in rooms:
                rooms.append(room_id)
            async with session.put(url, json=direct, headers=headers) as resp:
                resp.raise_for_status()
        finally:
            async with session.post(f"{base}/logout", headers=headers):
                pass


def _relation(reply_to: str | None, thread_root: str | None) -> dict[str, Any]:
    """The ``m.relates_to`` of a message that replies to ``reply_to``, inside the thread of
    ``thread_root`` when given (nothing for neither)."""
    if thread_root:
        return {
            "m.relates_to": {
                "rel_type": "m.thread",
                "event_id": thread_root,
                "is_falling_back": not reply_to,
                "m.in_reply_to": {"event_id": reply_to or thread_root},
            }
        }
    if reply_to:
        return {"m.relates_to": {"m.in_reply_to": {"event_id": reply_to}}}
    return {}
