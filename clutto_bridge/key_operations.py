"""``clutto-bridge keys init|rotate|status|retire``: the keyset file and what its keys protect.

``rotate`` writes a new primary key into the keyset file and queues the re-encryption job
in the database; the running bridge (or a worker) reads the file again and does the work in
batches, resumable after a crash. The bot's E2EE crypto store is re-pickled under the new
primary at the bridge's next start, all at once, before its device loads (its Olm account and
sessions are rewritten with every message, so never under a running device); until then the
old key opens it, and ``retire`` refuses that key. These commands open the bridge's database themselves, so
they work whether the bridge runs or not; the job waits for it.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from clutto_bridge.config import ConfigError, Settings
from clutto_bridge.crypto import FieldCipher, KeysetError, KeysetFile
from clutto_bridge.db import Stores, create_database
from clutto_bridge.db.job import Job, JobKind, JobState
from clutto_bridge.jobs.reencrypt import DEFAULT_BATCH

T = TypeVar("T")


class KeysError(Exception):
    """A refusal for the operator: one line."""


def _file(settings: Settings) -> KeysetFile:
    return KeysetFile(settings.keyset_path)


def init(settings: Settings) -> int:
    try:
        keyset = _file(settings).create(int(time.time()))
    except KeysetError as e:
        raise KeysError(str(e)) from None
    print(
        f"Created {settings.keyset_path} with key {keyset.primary} (primary). Back it up: "
        "without it the encrypted data cannot be read."
    )
    return 0


def _cipher(settings: Settings) -> FieldCipher:
    try:
        return FieldCipher.from_file(settings.keyset_path)
    except KeysetError as e:
        raise ConfigError("security.keyset", str(e)) from None


async def _with_stores(settings: Settings, cipher: FieldCipher, work: Callable[[Stores], Awaitable[T]]) -> T:
    a = settings.appservice
    db = create_database(a.database, a.database_opts, cipher)
    await db.start()
    try:
        return await work(Stores.over(db, cipher))
    finally:
        await db.stop()


def rotate(settings: Settings, batch: int = DEFAULT_BATCH, wait: bool = False) -> int:
    file = _file(settings)
    cipher = _cipher(settings)
    keyset = cipher.keyset.rotated(int(time.time()))

    async def queue(stores: Stores) -> Job:
        job = await stores.jobs.active(str(JobKind.REENCRYPT), "")
        if job is None:
            now = int(time.time() * 1000)
            job = await stores.jobs.add(str(JobKind.REENCRYPT), "", {"primary": keyset.primary, "batch": batch}, now)
        return job

    file.save(keyset)  # first: a queued job must find its key in the file
    job = asyncio.run(_with_stores(settings, cipher, queue))
    print(f"Key {keyset.primary} is the primary key now; the keys before it decrypt only.")
    print(
        f"Re-encryption job #{job.id} is queued; the running bridge does it in batches "
        "(`clutto-bridge keys status` shows how far it got)."
    )
    if wait:
        return asyncio.run(_follow(settings, cipher, job.id))
    return 0


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width if total == 0 else int(width * done / total)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def job_line(job: Job) -> str:
    p = job.progress
    columns = p.get("columns", 0)
    done = min(p.get("column", 0), columns)
    return (
        f"re-encryption #{job.id} {job.state}: {_bar(done, columns)} {done}/{columns} columns, "
        f"{p.get('rewrapped', 0)} values re-encrypted"
    )


async def _follow(settings: Settings, cipher: FieldCipher, job_id: int, poll: float = 0.5) -> int:
    async def watch(stores: Stores) -> Job:
        shown = ""
        while True:
            job = await stores.jobs.get(job_id)
            if job is None:
                raise LookupError(f"there is no job {job_id}")
            if job_line(job) != shown:
                shown = job_line(job)
                print(shown, flush=True)
            if job.state in (JobState.DONE, JobState.FAILED):
                return job
            await asyncio.sleep(poll)

    job = await _with_stores(settings, cipher, watch)
    if job.state == JobState.FAILED:
        print(f"Re-encryption failed: {job.error}", file=sys.stderr)
        return 1
    return 0


def status(settings: Settings) -> int:
    cipher = _cipher(settings)

    async def look(stores: Stores) -> tuple[dict, list[Job], set[int]]:
        counts = await stores.encrypted.count_by_key()
        jobs = await stores.jobs.latest("", str(JobKind.REENCRYPT), limit=1)
        return counts, jobs, await stores.crypto_pickles.key_ids()

    counts, jobs, pickled = asyncio.run(_with_stores(settings, cipher, look))
    print(f"Keyset {settings.keyset_path}:")
    for key in cipher.keyset.keys:
        role = "primary" if key.id == cipher.keyset.primary else "decrypt only"
        made = datetime.fromtimestamp(key.created_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        store = ", the bot's E2EE crypto store" if key.id in pickled else ""
        print(f"  key {key.id:<11} {role:<13} created {made}  protects {counts.get(key.id, 0)} value(s){store}")
    if counts.get(None):
        print(f"  {counts[None]} value(s) under no key of this keyset (a removed key, or not encrypted)")
    for job in jobs:
        print("  " + job_line(job))
    return 0


def retire(settings: Settings, key_id: int) -> int:
    file = _file(settings)
    cipher = _cipher(settings)
    try:
        smaller = cipher.keyset.without(key_id)
    except KeysetError as e:
        raise KeysError(str(e)) from None

    async def count(stores: Stores) -> tuple[int, bool]:
        return await stores.encrypted.rows_under(key_id), key_id in await stores.crypto_pickles.key_ids()

    left, pickled = asyncio.run(_with_stores(settings, cipher, count))
    if pickled:
        # The store is re-pickled under the primary when the bridge starts (never under a running one).
        raise KeysError(
            f"key {key_id} still protects the bot's E2EE crypto store; start the bridge once "
            "(it re-pickles the store under the primary key), then retire it"
        )
    if left:
        raise KeysError(
            f"key {key_id} still protects {left} value(s); wait for the re-encryption (`keys status`), then retire it"
        )
    file.save(smaller)
    print(f"Key {key_id} is retired (removed from {settings.keyset_path}).")
    return 0
