"""Benchmark: what the hash chain costs an audit append, and how fast a log verifies.

- Append: N rows through the AuditLog (lock row, previous hash, insert, hash, a signed
  checkpoint every 100 rows), against a baseline of the same N rows as plain inserts into
  the same table, in the same run and database.
- Verify: the rows read back in pages and checked (hashes, links, checkpoint signatures),
  in rows per second.

Runs on SQLite, and on PostgreSQL when 127.0.0.1:5432 answers (a throwaway database).

    .venv/bin/python bench/audit_chain.py [--rows 2000]

Absolute times depend on the machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import socket
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clutto_bridge.clock import SystemClock  # noqa: E402
from clutto_bridge.crypto.chain import ChainCheck  # noqa: E402
from clutto_bridge.db import create_database  # noqa: E402
from clutto_bridge.db.audit import AuditStore  # noqa: E402
from clutto_bridge.domain.audit import AuditLog  # noqa: E402

POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"


async def measure(url: str, rows: int) -> dict[str, float]:
    db = create_database(url)
    await db.start()
    try:
        started = time.perf_counter()
        for n in range(rows):
            await db.execute(
                "INSERT INTO audit_log (ts, team_id, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
                n,
                "team",
                "@owner:example.org",
                "baseline",
                f"@member{n}:example.org",
                json.dumps({"n": n}),
            )
        plain = time.perf_counter() - started
        await db.execute("DELETE FROM audit_log")

        log = AuditLog(
            store=AuditStore(db), clock=SystemClock(), signing_key=Ed25519PrivateKey.generate(), checkpoint_rows=100
        )
        started = time.perf_counter()
        for n in range(rows):
            await log.record(None, "@owner:example.org", "member_removed", f"@member{n}:example.org", n=n)
        chained = time.perf_counter() - started

        started = time.perf_counter()
        store = log.store
        keys = {k.key_id: k.public_jwk for k in await store.keys()}
        check, after = ChainCheck(await store.checkpoints(), keys), 0
        while page := await store.rows_after(after, 1000):
            assert all(check.add(row) is None for row in page)
            after = page[-1].id
        assert check.finish() is None and check.summary.rows == rows
        verified = time.perf_counter() - started
    finally:
        await db.stop()
    return {"plain_ms": plain / rows * 1000, "chained_ms": chained / rows * 1000, "verify_rows_s": rows / verified}


def postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


async def main(rows: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="clutto-bench-audit-"))
    targets = {"sqlite": f"sqlite:{folder / 'clutto.db'}"}
    name = f"clutto_bench_{secrets.token_hex(4)}"
    if postgres_reachable():
        conn = await asyncpg.connect(POSTGRES)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        targets["postgres"] = POSTGRES.rsplit("/", 1)[0] + "/" + name
    try:
        for kind, url in targets.items():
            r = await measure(url, rows)
            print(
                f"{kind:9} append: chained {r['chained_ms']:.2f} ms/row, plain insert {r['plain_ms']:.2f} ms/row, "
                f"ratio {r['chained_ms'] / r['plain_ms']:.2f}; verify {r['verify_rows_s']:,.0f} rows/s"
            )
    finally:
        if "postgres" in targets:
            conn = await asyncpg.connect(POSTGRES)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds (what the test suite runs; no figures to quote)"
    )
    args = parser.parse_args()
    asyncio.run(main(50 if args.smoke else args.rows))
