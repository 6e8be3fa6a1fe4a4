"""A token bucket, so long jobs never flood the homeserver."""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    def __init__(self, per_second: float, burst: int | None = None) -> None:
        self.rate = per_second
        self.capacity = burst or max(1, int(per_second))
        self.tokens = float(self.capacity)
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)
