"""Deliver one webhook event (a ``webhook`` job): signed POST, retried with backoff by the
runner while the receiver is unreachable or answers 5xx/408/429, failed on another 4xx."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from clutto_bridge.config import WebhookSettings
from clutto_bridge.jobs.runner import JobContext, Retry
from clutto_bridge.outbound.webhooks import DeliveryFailed


class Sender(Protocol):
    async def post(self, url: str, body: bytes, extra_headers: Mapping[str, str]) -> int: ...


class Refused(Exception):
    """The receiver refused the event with a 4xx; trying again would not help."""


@dataclass(kw_only=True, eq=False, repr=False)
class WebhookDelivery:
    receivers: Sequence[WebhookSettings]
    sender: Sender

    async def __call__(self, ctx: JobContext) -> None:
        url = ctx.job.payload["url"]
        receiver = next((r for r in self.receivers if r.url == url), None)
        if receiver is None:
            await ctx.checkpoint(skipped="receiver no longer configured")
            return
        body = json.dumps(ctx.job.payload["event"], separators=(",", ":"), sort_keys=True).encode()
        try:
            status = await self.sender.post(url, body, receiver.headers)
        except DeliveryFailed as e:
            raise (Retry(str(e)) if e.retry else Refused(str(e))) from None
        await ctx.checkpoint(delivered=status)
