"""One connection in one transaction, typed for the stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import cast

from mautrix.util.async_db import Database
from mautrix.util.async_db.connection import LoggingConnection


@asynccontextmanager
async def transaction(db: Database) -> AsyncIterator[LoggingConnection]:
    """``db.acquire()`` then ``conn.transaction()``: statements that commit together or not at all.

    mautrix annotates ``acquire`` and ``transaction`` as returning what they yield rather than
    context managers of it, which leaves ``conn`` untyped; the casts say what they are.
    """
    acquired = cast(AbstractAsyncContextManager[LoggingConnection], db.acquire())
    async with acquired as conn, cast(AbstractAsyncContextManager[None], conn.transaction()):
        yield conn
