"""Members authenticate to the provisioning API with a Matrix OpenID token, which only the
homeserver can vouch for (so asking it lives here, with every other homeserver call).

A client gets one from its homeserver (``POST /_matrix/client/v3/user/{userId}/openid/request_token``)
and sends it as the bearer token; the bridge asks the homeserver whose it is. Only users
of the bridge's own homeserver are accepted. Answers are cached briefly so a script does
not cost one homeserver round trip per call.
"""

from __future__ import annotations

import time

import aiohttp

_CACHE_SECONDS = 60
_CACHE_SIZE = 1000


class OpenIDVerifier:
    def __init__(self, homeserver_url: str, domain: str) -> None:
        self.url = f"{homeserver_url}/_matrix/federation/v1/openid/userinfo"
        self.domain = domain
        self.session: aiohttp.ClientSession | None = None  # set while the web app runs
        self._cache: dict[str, tuple[str, float]] = {}

    async def user_of(self, token: str) -> str | None:
        """The Matrix user the token belongs to, or None for an unknown or foreign token."""
        cached = self._cache.get(token)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        if self.session is None:
            return None
        try:
            async with self.session.get(self.url, params={"access_token": token}) as resp:
                if resp.status != 200:
                    return None
                data = await resp.json()
        except (aiohttp.ClientError, ValueError):
            return None
        user_id = data.get("sub") if isinstance(data, dict) else None
        if not isinstance(user_id, str) or user_id.split(":", 1)[-1] != self.domain:
            return None
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[token] = (user_id, time.monotonic() + _CACHE_SECONDS)
        return user_id
