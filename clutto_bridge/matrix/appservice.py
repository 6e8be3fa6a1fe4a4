"""mautrix's AppService, with transaction ids remembered in the bridge database.

mautrix keeps applied transaction ids in memory only; after a restart the homeserver may
retry a transaction the bridge already applied. Here a transaction is recorded once its
events were handled, and a recorded id is answered without applying it again.
"""

from __future__ import annotations

from typing import Any

from mautrix.appservice import AppService
from mautrix.types import JSON

from clutto_bridge.clock import Clock
from clutto_bridge.db.bot import TransactionLog


class ClutttoAppService(AppService):
    def __init__(self, *args: Any, transactions: TransactionLog, clock: Clock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.transaction_log = transactions
        self.clock = clock
        # Handlers run before the transaction is acknowledged, so a crash mid-way makes
        # the homeserver retry it instead of losing events.
        self.synchronous_handlers = True

    async def handle_transaction(self, txn_id: str, **kwargs: Any) -> JSON:
        if await self.transaction_log.seen(txn_id):
            self.log.debug("Transaction %s was already applied, not applying it again", txn_id)
            return {}
        result = await super().handle_transaction(txn_id, **kwargs)
        await self.transaction_log.record(txn_id, self.clock.now_ms())
        return result
