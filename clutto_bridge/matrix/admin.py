"""The Synapse admin API, as the bot calls it once the operator made it a server admin.

Only what the bridge needs: accounts (create, deactivate, log in as, for m.direct),
and room deletion with purge. Everything else goes through the client-server API.

Device data (``whois``: every session's IP address and user agent, ``devices``) is never
asked for, so the bridge cannot store or log what the homeserver collects there (P4).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from mautrix.api import HTTPAPI, Method, Path, PathBuilder, SynapseAdminPath
from mautrix.appservice import IntentAPI
from mautrix.errors import MatrixRequestError

log = logging.getLogger("clutto.admin")


class AdminUnavailable(Exception):
    """The homeserver has no admin API for us (not Synapse, or the bot is not an admin)."""


class HomeserverTaskFailed(Exception):
    """A background task of the homeserver (purge, room deletion) reported failure."""


def status_poll_delay(elapsed: float) -> float:
    """How long to wait before asking again about a homeserver task running ``elapsed``
    seconds: a twentieth of that (10 ms to 1 s), so a short purge is seen done within about
    5% of its time and a long one costs few requests."""
    return min(1.0, max(0.01, elapsed / 20))


class SynapseAdmin:
    def __init__(self, bot: Callable[[], IntentAPI]) -> None:
        self._bot = bot
        self._available = True  # until check_available() asks the homeserver

    @property
    def available(self) -> bool:
        """Whether the bot may use the admin API, as ``check_available`` last found. Without it
        retention degrades to redaction only: purges and media deletion need the admin API."""
        return self._available

    async def check_available(self) -> bool:
        """Ask the homeserver whether the bot is an admin (at start-up) and keep the answer in
        ``available``, which every reader shares."""
        self._available = await self.is_admin()
        return self._available

    async def _request(self, method: Method, path: Any, content: Any = None, *, sensitive: bool = False) -> Any:
        api = self._bot().api
        try:
            if sensitive:
                # AppServiceAPI.request has no ``sensitive``; the base HTTPAPI.request keeps
                # the body (a password, a token) out of the debug log.
                return await HTTPAPI.request(
                    api, method, path, content, query_params={"user_id": api.bot_mxid}, sensitive=True
                )
            return await api.request(method, path, content)
        except MatrixRequestError as e:
            if e.http_status in (401, 403) and e.errcode in ("M_FORBIDDEN", "M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"):
                raise AdminUnavailable(f"the bot is not a homeserver admin ({e.message})") from e
            if e.http_status == 404 and e.errcode == "M_UNRECOGNIZED":
                raise AdminUnavailable("the homeserver has no Synapse admin API") from e
            raise

    async def is_admin(self) -> bool:
        bot = self._bot()
        try:
            data = await self._request(Method.GET, SynapseAdminPath.v1.users[bot.mxid].admin)
        except (AdminUnavailable, MatrixRequestError):
            return False
        return bool(data.get("admin"))

    async def make_room_admin(self, room_id: str) -> None:
        """Give the bot the level of the room's highest local user (``make_room_admin``): in a room
        a member made and added to the team's space, the bot needs it to apply the team's rules."""
        await self._request(
            Method.POST, SynapseAdminPath.v1.rooms[room_id].make_room_admin, {"user_id": self._bot().mxid}
        )

    async def account_exists(self, user_id: str) -> bool:
        try:
            await self._request(Method.GET, SynapseAdminPath.v2.users[user_id])
        except MatrixRequestError as e:
            if e.http_status == 404:
                return False
            raise
        return True

    async def account_profile(self, user_id: str) -> tuple[str | None, str | None]:
        """(display name, avatar URL) of a local account; MatrixRequestError 404 when there is
        none. Only these two fields are read: the account record's other fields (threepids,
        last-seen time) are neither kept nor logged."""
        data = await self._request(Method.GET, SynapseAdminPath.v2.users[user_id])
        return data.get("displayname"), data.get("avatar_url") or None

    async def create_account(self, user_id: str, password: str, email: str | None, displayname: str | None) -> None:
        body: dict[str, Any] = {"password": password, "admin": False, "deactivated": False}
        if email:
            body["threepids"] = [{"medium": "email", "address": email}]
        if displayname:
            body["displayname"] = displayname
        await self._request(Method.PUT, SynapseAdminPath.v2.users[user_id], body, sensitive=True)

    async def deactivate(self, user_id: str, erase: bool = False) -> None:
        await self._request(Method.POST, SynapseAdminPath.v1.deactivate[user_id], {"erase": erase})

    async def is_deactivated(self, user_id: str) -> bool:
        """Whether a local account is deactivated (MatrixRequestError 404 when there is none)."""
        data = await self._request(Method.GET, SynapseAdminPath.v2.users[user_id])
        return bool(data.get("deactivated"))

    async def reactivate(self, user_id: str, password: str, email: str | None) -> None:
        """Undo a deactivation (Synapse needs a new password; deactivating removed the email)."""
        body: dict[str, Any] = {"deactivated": False, "password": password}
        if email:
            body["threepids"] = [{"medium": "email", "address": email}]
        await self._request(Method.PUT, SynapseAdminPath.v2.users[user_id], body, sensitive=True)

    async def login_as(self, user_id: str, valid_for_s: int = 120) -> str:
        """A short-lived access token of another user (to write their m.direct)."""
        until = int(time.time() * 1000) + valid_for_s * 1000
        data = await self._request(
            Method.POST, SynapseAdminPath.v1.users[user_id].login, {"valid_until_ms": until}, sensitive=True
        )
        return data["access_token"]

    async def media_info(self, mxc: str) -> tuple[str, int] | None:
        """Type and size of a local upload, or None if the homeserver has no such file."""
        try:
            data = await self._request(Method.GET, _media_path(mxc))
        except MatrixRequestError as e:
            if e.http_status in (400, 404):
                return None
            raise
        info = data.get("media_info") or {}
        return str(info.get("media_type") or ""), int(info.get("media_length") or 0)

    async def user_of_email(self, email: str) -> str | None:
        """The local account that has this email address, if any."""
        try:
            data = await self._request(Method.GET, SynapseAdminPath.v1.threepid["email"].users[email])
        except MatrixRequestError as e:
            if e.http_status == 404:
                return None
            raise
        return data.get("user_id")

    # Profiles: the client API's profile endpoints, which let a server admin write and
    # delete another local user's fields (displayname and avatar_url propagate to rooms).

    async def profile(self, user_id: str) -> dict[str, Any]:
        try:
            return await self._bot().api.request(Method.GET, Path.v3.profile[user_id])
        except MatrixRequestError as e:
            if e.http_status == 404:
                return {}
            raise

    async def set_profile_field(self, user_id: str, field: str, value: str | None) -> None:
        if value is None and field not in ("displayname", "avatar_url"):
            await self._request(Method.DELETE, Path.v3.profile[user_id][field])
        else:
            await self._request(Method.PUT, Path.v3.profile[user_id][field], {field: value or ""})

    async def purge_history(self, room_id: str, before_event: str, timeout: float = 600.0) -> bool:
        """Delete a room's events (local ones too) that come before ``before_event``.

        An event rather than a time: Synapse maps ``purge_up_to_ts`` to the time it
        *received* events, which for imported or federated history is not their age.
        Synapse keeps state events and never deletes media. False if nothing was purged.
        """
        purge_id = await self.start_purge(room_id, before_event)
        if purge_id is None:
            return False
        await self.wait_for_purge(room_id, purge_id, timeout)
        return True

    async def start_purge(self, room_id: str, before_event: str) -> str | None:
        """Ask for ``purge_history`` and return its id; None if there is nothing to purge."""
        body = {"delete_local_events": True}
        try:
            data = await self._request(Method.POST, SynapseAdminPath.v1.purge_history[room_id][before_event], body)
        except MatrixRequestError as e:
            if e.http_status in (400, 404):  # nothing before that point
                log.debug("Nothing to purge in %s before %s: %s", room_id, before_event, e.message)
                return None
            raise
        return data["purge_id"]

    async def wait_for_purge(self, room_id: str, purge_id: str, timeout: float = 600.0) -> None:
        """Until the purge is complete; HomeserverTaskFailed if it failed."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            status = await self._request(Method.GET, SynapseAdminPath.v1.purge_history_status[purge_id])
            if status["status"] == "complete":
                return
            if status["status"] == "failed":
                raise HomeserverTaskFailed(f"purging {room_id} failed on the homeserver: {status.get('error')}")
            await asyncio.sleep(status_poll_delay(time.monotonic() - started))
        raise TimeoutError(f"purging {room_id} did not finish within {timeout:.0f}s")

    async def delete_media(self, mxc: str) -> bool:
        """Delete a local media file; False if it is not ours or already gone."""
        try:
            await self._request(Method.DELETE, _media_path(mxc))
        except MatrixRequestError as e:
            if e.http_status in (400, 404):
                return False
            raise
        return True

    async def delete_room(self, room_id: str, message: str, timeout: float = 120.0, attempts: int = 3) -> None:
        """Kick everyone, then delete the room and purge its history; wait until done.

        Synapse's own deletion task can fail on a passing race (seen with SQLite: a
        membership row written while it deletes); it is tried again a few times.
        """
        for attempt in range(1, attempts + 1):
            try:
                await self._delete_room_once(room_id, message, timeout)
                return
            except HomeserverTaskFailed as e:
                if attempt == attempts:
                    raise
                log.warning("%s; trying again", e)
                await asyncio.sleep(attempt)

    async def _delete_room_once(self, room_id: str, message: str, timeout: float) -> None:
        body = {"purge": True, "block": False, "message": message}
        data = await self._request(Method.DELETE, SynapseAdminPath.v2.rooms[room_id], body)
        delete_id = data["delete_id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = await self._request(Method.GET, SynapseAdminPath.v2.rooms.delete_status[delete_id])
            if status["status"] == "complete":
                return
            if status["status"] == "failed":
                raise HomeserverTaskFailed(f"deleting {room_id} failed on the homeserver: {status.get('error')}")
            await asyncio.sleep(0.5)
        raise TimeoutError(f"deleting {room_id} did not finish within {timeout:.0f}s")


def _media_path(mxc: str) -> PathBuilder:
    """The admin API path of a piece of media: /_synapse/admin/v1/media/<server>/<id>."""
    server, _, media_id = mxc.removeprefix("mxc://").partition("/")
    return SynapseAdminPath.v1.media[server][media_id]
