"""POST a webhook event, signed with our key (RFC 9421 over ``@method``, ``@target-uri``,
``content-type`` and ``content-digest``), and say whether the receiver took it."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import aiohttp
from multidict import CIMultiDict

from clutto_bridge.crypto.http_signatures import MessageSigner

log = logging.getLogger("clutto.webhooks")

TIMEOUT = aiohttp.ClientTimeout(total=30)


class DeliveryFailed(Exception):
    """The receiver did not take the event. ``retry``: worth trying again later (5xx, 408,
    429, no connection); otherwise it refused it (another 4xx) and will refuse again."""

    def __init__(self, message: str, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class WebhookSender:
    def __init__(self, signer: MessageSigner, verify_tls: bool = True) -> None:
        self.signer = signer
        self.verify_tls = verify_tls
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, body: bytes, extra_headers: Mapping[str, str]) -> int:
        """Deliver ``body`` (JSON); the receiver's status, or ``DeliveryFailed``."""
        headers = CIMultiDict(extra_headers)
        headers["Content-Type"] = "application/json"
        self.signer.sign_request("POST", url, headers, body)
        try:
            async with self._client().post(url, data=body, headers=headers, allow_redirects=False) as resp:
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            # The URL only: extra headers may hold the receiver's secret.
            raise DeliveryFailed(f"{url}: {type(e).__name__}", retry=True) from None
        if 200 <= status < 300:
            return status
        raise DeliveryFailed(f"{url} answered {status}", retry=status >= 500 or status in (408, 429))

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
