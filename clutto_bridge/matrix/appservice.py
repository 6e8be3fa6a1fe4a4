"""mautrix's AppService, with transaction ids remembered in the bridge database.

mautrix keeps applied transaction ids in memory only; after a restart the homeserver may
retry a transaction the bridge already applied. Here a transaction is recorded once its
events were handled, and a recorded id is answered without applying it again.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from mautrix.appservice import AppService
from mautrix.types import JSON


class AppliedTransactions(Protocol):
    """Where applied transaction ids are kept (the bridge database's ``TransactionLog``)."""

    async def seen(self, txn_id: str) -> bool: ...

    async def record(self, txn_id: str, now_ms: int) -> None: ...


class CluttoAppService(AppService):
    def __init__(
        self, *args: Any, transactions: AppliedTransactions, now_ms: Callable[[], int], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.transaction_log = transactions
        self.now_ms = now_ms
        # Handlers run before the transaction is acknowledged, so a crash mid-way makes
        # the homeserver retry it instead of losing events.
        self.synchronous_handlers = True

    async def handle_transaction(self, txn_id: str, **kwargs: Any) -> JSON:
        if await self.transaction_log.seen(txn_id):
            self.log.debug("Transaction %s was already applied, not applying it again", txn_id)
            return {}
        result = await super().handle_transaction(txn_id, **kwargs)
        await self.transaction_log.record(txn_id, self.now_ms())
        return result
