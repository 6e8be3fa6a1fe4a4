"""The re-encryption job: after ``keys rotate``, every encrypted value under the new primary key.

Column by column, in batches ordered by row key; the checkpoint after each batch is the
column and the last row key done, so a job cut off by a crash or a stop resumes after the
last batch it recorded (a batch redone is harmless: a value already under the primary is
left alone). Each value is replaced only if it is still the one that was read, so a value
the bridge rewrote meanwhile is never overwritten with an older one.

Before it starts, the job reads the keyset file again (the process running it may have
loaded it before the rotation). At the end it counts what is still under another key (a
process that had not yet seen the new keyset may have written some) and walks again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from clutto_bridge import testhooks
from clutto_bridge.crypto import FieldCipher
from clutto_bridge.db.encrypted import ENCRYPTED, EncryptedColumns
from clutto_bridge.jobs.runner import JobContext, Retry

log = logging.getLogger("clutto.jobs.reencrypt")

DEFAULT_BATCH = 200
MAX_PASSES = 3


@dataclass(kw_only=True, eq=False, repr=False)
class Reencryption:
    columns: EncryptedColumns
    cipher: FieldCipher  # the one the columns encrypt with

    async def __call__(self, ctx: JobContext) -> None:
        cipher = self.cipher
        cipher.reload()
        wanted = ctx.job.payload.get("primary")
        if wanted is not None and cipher.keyset.key(wanted) is None:
            raise Retry(f"this process's keyset has no key {wanted}: copy the rotated keyset file to every host")
        size = int(ctx.job.payload.get("batch", DEFAULT_BATCH))
        p = ctx.progress
        if "columns" not in p:
            await ctx.checkpoint(columns=len(ENCRYPTED), column=0, after=None, rewrapped=0, passes=1)
        batches = 0
        while True:
            while p["column"] < len(ENCRYPTED):
                batch = await self.columns.rewrap_batch(ENCRYPTED[p["column"]].name, p["after"], size)
                done_with_column = batch.last_key is None
                await ctx.checkpoint(
                    column=p["column"] + 1 if done_with_column else p["column"],
                    after=None if done_with_column else batch.last_key,
                    rewrapped=p["rewrapped"] + batch.rewrapped,
                )
                batches += 1
                testhooks.exit_if("EXIT_AFTER_REENCRYPT_BATCH", f"batch {batches}")
            left = sum(n for key, n in (await self.columns.count_by_key()).items() if key != cipher.primary)
            if not left or p["passes"] >= MAX_PASSES:
                await ctx.checkpoint(left=left, primary=cipher.primary)
                break
            log.info("%d value(s) were written under an older key meanwhile; another pass", left)
            await ctx.checkpoint(column=0, after=None, passes=p["passes"] + 1)
