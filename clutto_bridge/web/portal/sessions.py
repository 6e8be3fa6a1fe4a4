"""Portal sessions kept in the bridge database, through aiohttp-session.

Why server-side rather than aiohttp-session's ``EncryptedCookieStorage``: the cookie then
holds only a random id (its SHA-256 hash is the database key), so signing out or an expired
session ends on the server at once, a stolen copy of the database signs nobody in, and the
bridge keeps no extra cookie key to rotate. The storage follows aiohttp-session's own
``RedisStorage``: a new id per new session, the data as JSON.
"""

from __future__ import annotations

import json
import secrets

from aiohttp import web
from aiohttp_session import AbstractStorage, Session

from clutto_bridge.domain.portal import PortalAccess


class DatabaseStorage(AbstractStorage):
    def __init__(self, access: PortalAccess, *, cookie_name: str, max_age: int | None, secure: bool, path: str) -> None:
        super().__init__(
            cookie_name=cookie_name, max_age=max_age, secure=secure, httponly=True, samesite="Lax", path=path
        )
        self.access = access
        self.lifetime = max_age or 12 * 3600  # a browser-session cookie still ends on the server

    async def load_session(self, request: web.Request) -> Session:
        key = self.load_cookie(request)
        if key is None:
            return Session(None, data=None, new=True, max_age=self.max_age)
        stored = await self.access.session(key)
        if stored is None:  # expired or signed out: start over under a new id
            return Session(None, data=None, new=True, max_age=self.max_age)
        return Session(key, data=json.loads(stored), new=False, max_age=self.max_age)

    async def save_session(self, request: web.Request, response: web.StreamResponse, session: Session) -> None:
        key = session.identity
        if session.empty:
            if key is not None:
                await self.access.end_session(key)
            self.save_cookie(response, "", max_age=session.max_age)
            return
        if key is None:
            key = secrets.token_urlsafe(32)
        await self.access.keep_session(
            key, session.get("user"), json.dumps(self._get_session_data(session)), self.lifetime
        )
        self.save_cookie(response, key, max_age=session.max_age)
