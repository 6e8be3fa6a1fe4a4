"""Whether the homeserver reaches the bridge: asked at start and then periodically.

Synapse retries a transaction it could not deliver on a back-off that doubles up to 8.5
minutes, and nothing tells the bridge it is waiting: after a restart, or after one delivery
failed (a 500 while the database was away), members' messages would lie on the homeserver
unseen. A ping asked for through the homeserver (Matrix 1.7) that gets through makes Synapse
send what it holds at once; one that fails is what the operator must hear of. So each check
sets a gauge, and the log speaks at the first check and whenever the answer changes, not at
every minute's ping.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Protocol

from clutto_bridge.matrix.appservice import Reach
from clutto_bridge.metrics import Metrics

log = logging.getLogger("clutto.reach")


class Pingable(Protocol):
    """The appservice adapter's side of the ping (``matrix/appservice.py``)."""

    async def ask_to_be_pinged(self) -> Reach: ...


@dataclass(kw_only=True, eq=False, repr=False)
class HomeserverReach:
    appservice: Pingable
    metrics: Metrics
    # The last answer (None: none yet), to log changes only.
    last: Reach | None = field(default=None, init=False)

    async def check(self) -> Reach:
        """Ask for a ping; set the gauge and log what changed since the last check."""
        try:
            reach = await self.appservice.ask_to_be_pinged()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the homeserver itself did not answer us
            reach = Reach(None, f"the homeserver did not answer the request ({type(e).__name__}: {e})")
        self.metrics.homeserver_reaches(reach.reached)
        last, self.last = self.last, reach
        if last is not None and last.reached == reach.reached:
            return reach
        if reach.reached:
            again = " again" if last is not None else ""
            log.info("The homeserver reaches the bridge%s (%s); it sends what it held back now", again, reach.detail)
        elif reach.reached is None:
            log.warning("Could not check whether the homeserver reaches the bridge: %s", reach.detail)
        else:
            log.warning(
                "THE HOMESERVER CANNOT REACH THE BRIDGE: %s. No events arrive until it can: check `url` in the "
                "appservice registration file and that the homeserver can connect to that address.",
                reach.detail,
            )
        return reach
