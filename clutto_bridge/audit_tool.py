"""``clutto-bridge audit verify|export``: the audit log checked offline, without the running
bridge: from its database, or from an export file that needs nothing else.

An export is JSON Lines: a header, the public keys, the checkpoints, the witness (when the
bridge's host has one), the rows in chain order and an end line with the counts (so a
cut-off file fails). Verifying names the first row that does not match and exits 1; a valid
log exits 0 with a summary.

The log is held against its witness (``crypto.witness``), the last checkpoint kept outside
the database, so a log whose newest rows were deleted with their checkpoints fails too. It
is read from beside the keyset (the config's ``security.keyset``), from the export, or from
the file ``--witness`` names.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from mautrix.util.async_db import Database

from clutto_bridge.config import ConfigError, Settings, sqlite_file
from clutto_bridge.crypto.chain import ChainCheck, Problem, Summary
from clutto_bridge.crypto.signing import SigningKeyError, jwk_thumbprint, key_id, load_signing_key
from clutto_bridge.crypto.witness import (
    FORMAT as WITNESS_FORMAT,
    VERSION as WITNESS_VERSION,
    Witness,
    WitnessError,
    WitnessFile,
)
from clutto_bridge.db import create_database
from clutto_bridge.db.audit import AuditRow, AuditStore, Checkpoint, SigningKeyRecord

FORMAT = "clutto.audit.export"
VERSION = 2
READABLE = (1, 2)
"""Versions verified: 2 added the witness item."""
PAGE = 1000


class Progress:
    """Rows done out of a total, on standard error: one updating line on a terminal, a line
    per tenth otherwise (so logs of long runs stay short)."""

    def __init__(self, what: str, total: int, stream: TextIO = sys.stderr) -> None:
        self.what, self.total, self.stream = what, max(total, 1), stream
        self.tty = stream.isatty()
        self.shown = -1

    def update(self, done: int) -> None:
        tenth = min(10, done * 10 // self.total)
        if self.tty:
            self.stream.write(f"\r{self.what}: {done:,} of {self.total:,}")
            self.stream.flush()
        elif tenth > self.shown and self.total > PAGE:
            self.stream.write(f"{self.what}: {done:,} of {self.total:,}\n")
        self.shown = tenth

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


# --- the database --------------------------------------------------------------------------------


async def open_database(settings: Settings) -> Database:
    """The bridge's database; an SQLite file must exist (verifying never creates one)."""
    url = settings.appservice.database
    path = sqlite_file(url)
    if path is not None and not path.exists():
        raise ConfigError("appservice.database", f"{path} does not exist")
    db = create_database(url, settings.appservice.database_opts)
    try:
        await db.start()
    except Exception as e:
        raise ConfigError("appservice.database", f"cannot open the database: {e}") from None
    return db


# --- the witness ---------------------------------------------------------------------------------


@dataclass
class WitnessSource:
    """The witness a log is held against, and where it was read (or why there is none), for
    the summary."""

    witness: Witness | None
    where: str

    @property
    def head(self) -> Checkpoint | None:
        return Checkpoint(**asdict(self.witness.checkpoint)) if self.witness else None


def read_witness(path: Path, option: str) -> WitnessSource:
    """The witness at ``path`` (None while the bridge has signed no checkpoint there yet); a
    file that is not one, or a missing file the operator named, is an error naming ``option``
    (exit 2)."""
    try:
        witness = WitnessFile(path).load()
    except WitnessError as e:
        raise ConfigError(option, str(e)) from None
    if witness is None and option == "--witness":
        raise ConfigError(option, f"{path} does not exist")
    return WitnessSource(witness, str(path) if witness else f"{path} does not exist yet")


async def verify_database(settings: Settings, trusted: set[str] | None, witness_path: Path | None = None) -> int:
    witness = read_witness(witness_path or settings.witness_path, "--witness" if witness_path else "audit witness")
    db = await open_database(settings)
    try:
        store = AuditStore(db)
        keys = {k.key_id: k.public_jwk for k in await store.keys()}
        check = ChainCheck(await store.checkpoints(), keys, trusted, witness.head)
        progress = Progress("Verified rows", await store.count())
        problem = None
        async for row in _rows(store):
            problem = check.add(row)
            progress.update(check.summary.rows)
            if problem:
                break
        progress.close()
        return report(problem or check.finish(), check.summary, configured_key(settings), witness)
    finally:
        await db.stop()


async def _rows(store: AuditStore) -> AsyncIterator[AuditRow]:
    after = 0
    while True:
        page = await store.rows_after(after, PAGE)
        for row in page:
            yield row
        if len(page) < PAGE:
            return
        after = page[-1].id


async def export_database(settings: Settings, target: Path) -> int:
    """Write the log to ``target`` (readable by its owner only: rows name people)."""
    witness = read_witness(settings.witness_path, "audit witness").witness
    db = await open_database(settings)
    partial = target.with_name(f".{target.name}.partial")
    try:
        store = AuditStore(db)
        keys, checkpoints, total = await store.keys(), await store.checkpoints(), await store.count()
        progress = Progress("Exported rows", total)
        rows = 0
        with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            write = lambda item: out.write(json.dumps(item, sort_keys=True, ensure_ascii=False) + "\n")  # noqa: E731
            write(HEADER)
            for item in [*map(key_item, keys), *map(checkpoint_item, checkpoints)]:
                write(item)
            if witness is not None:
                write(witness_item(witness))
            async for row in _rows(store):
                write(row_item(row))
                rows += 1
                progress.update(rows)
            write(end_item(rows, len(checkpoints), len(keys)))
        os.replace(partial, target)
        progress.close()
    finally:
        partial.unlink(missing_ok=True)
        await db.stop()
    print(f"Wrote {rows:,} rows, {len(checkpoints):,} checkpoints and {len(keys)} public key(s) to {target}.")
    return 0


HEADER = {"type": FORMAT, "version": VERSION}


def key_item(k: SigningKeyRecord) -> dict[str, Any]:
    return {"type": "key", "key_id": k.key_id, "public_jwk": k.public_jwk, "first_used": k.first_used}


def checkpoint_item(c: Checkpoint) -> dict[str, Any]:
    return {"type": "checkpoint", **c.__dict__}


def witness_item(witness: Witness) -> dict[str, Any]:
    return {"type": "witness", "counter": witness.counter, "checkpoint": asdict(witness.checkpoint)}


def row_item(row: AuditRow) -> dict[str, Any]:
    return {"type": "row", **row.__dict__}


def end_item(rows: int, checkpoints: int, keys: int) -> dict[str, Any]:
    return {"type": "end", "rows": rows, "checkpoints": checkpoints, "keys": keys}


def configured_key(settings: Settings) -> str | None:
    """The id of the configured signing key, when its file can be read (never made here)."""
    try:
        return key_id(load_signing_key(settings.signing_key_path).public_key())
    except SigningKeyError:
        return None


# --- an export file ------------------------------------------------------------------------------


class BadExport(Exception):
    pass


def verify_file(path: Path, trusted: set[str] | None, witness_path: Path | None = None) -> int:
    """``witness_path``: the witness to hold the export against; by default the one it holds."""
    given = read_witness(witness_path, "--witness") if witness_path else None
    try:
        size = path.stat().st_size
        with open(path, "rb") as stream:
            progress = Progress("Verified bytes", size)
            problem, summary, witness = _check_export(_lines(stream, progress), trusted, given)
            progress.close()
    except OSError as e:
        print(f"clutto-bridge: cannot read {path}: {e.strerror}", file=sys.stderr)
        return 1
    except BadExport as e:
        print(f"The export does not verify: {e}")
        return 1
    return report(problem, summary, None, witness)


def _lines(stream: BinaryIO, progress: Progress) -> Iterator[tuple[int, dict[str, Any]]]:
    done = 0
    for number, raw in enumerate(stream, 1):
        done += len(raw)
        progress.update(done)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadExport(f"line {number}: not UTF-8 text (the file was changed, or is not an export)") from None
        try:
            item = json.loads(line)
        except ValueError:
            raise BadExport(f"line {number}: not valid JSON (the file was changed or cut)") from None
        if not isinstance(item, dict) or "type" not in item:
            raise BadExport(f"line {number}: not an item of an audit export")
        yield number, item


def _check_export(
    lines: Iterator[tuple[int, dict[str, Any]]],
    trusted: set[str] | None,
    given: WitnessSource | None,
) -> tuple[Problem | None, Summary, WitnessSource]:
    keys: dict[str, dict[str, str]] = {}
    checkpoints: list[Checkpoint] = []
    check: ChainCheck | None = None
    counts = {"row": 0, "checkpoint": 0, "key": 0}
    witness = given or WitnessSource(None, "the export holds none; pass --witness FILE")

    def start() -> ChainCheck:
        return check or ChainCheck(checkpoints, keys, trusted, witness.head)

    for number, item in lines:
        kind = item.pop("type")
        if number == 1:
            if kind != FORMAT or item.get("version") not in READABLE:
                raise BadExport(f"line 1: not a clutto-bridge audit export (version {VERSION})")
            continue
        if kind == "witness":
            if check is not None:
                raise BadExport(f"line {number}: the witness after the rows")
            try:
                held = Witness.from_json({"type": WITNESS_FORMAT, "version": WITNESS_VERSION, **item})
            except ValueError as e:
                raise BadExport(f"line {number}: {e}") from None
            witness = given or WitnessSource(held, "held by the export")
            continue
        if kind == "end":
            if {k: item.get(f"{k}s") for k in counts} != counts:
                raise BadExport(
                    f"line {number}: the file should hold {item.get('rows')} rows, {item.get('checkpoints')}"
                    f" checkpoints and {item.get('keys')} keys, but holds {counts['row']}, "
                    f"{counts['checkpoint']} and {counts['key']}"
                )
            check = start()
            return check.finish(), check.summary, witness
        if kind not in counts:
            raise BadExport(f"line {number}: unknown item {kind!r}")
        counts[kind] += 1
        try:
            if kind == "key":
                record = SigningKeyRecord(**item)
                keys[record.key_id] = record.public_jwk
            elif kind == "checkpoint":
                if check is not None:
                    raise BadExport(f"line {number}: a checkpoint after the rows")
                checkpoints.append(Checkpoint(**item))
            else:
                check = start()
                problem = check.add(AuditRow(**item))
                if problem:
                    return problem, check.summary, witness
        except TypeError:
            raise BadExport(f"line {number}: a {kind} with missing or unknown fields") from None
    raise BadExport("the file ends before its end line (it was cut)")


# --- output --------------------------------------------------------------------------------------


def trusted_keys(path: Path | None) -> set[str] | None:
    """Key ids of a JWK Set file (``{"keys": [...]}``), the keys the operator vouches for."""
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
        return {jwk_thumbprint(jwk) for jwk in data["keys"]}
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError("--trusted-keys", f'{path} is not a readable JWK Set ({{"keys": [...]}})') from None


def report(problem: Problem | None, summary: Summary, configured: str | None, witness: WitnessSource) -> int:
    if problem:
        print(f"The audit log does not verify: {problem}")
        return 1
    s = summary
    if s.rows == 0:
        print(f"The audit log is empty.\n{_witness_line(s, witness)}")
        return 0
    keys = ", ".join(f"{kid} ({n}{', the configured key' if kid == configured else ''})" for kid, n in s.keys.items())
    lines = [f"The audit log verifies: {s.rows:,} rows up to row {s.last_row}, chained without a break."]
    if s.checkpoints:
        lines.append(f"{s.checkpoints:,} checkpoint(s) up to row {s.signed_up_to}, signed by: {keys}.")
    if s.unsigned:
        lines.append(f"{s.unsigned:,} row(s) after the last checkpoint are chained but not signed yet.")
    lines.append(_witness_line(s, witness))
    print("\n".join(lines))
    return 0


def _witness_line(s: Summary, witness: WitnessSource) -> str:
    if s.witnessed is not None:
        return (
            f"The witness ({witness.where}) holds checkpoint {s.witnessed.id} over row {s.witnessed.row_id}, "
            "and the log still has both: nothing was cut off before it."
        )
    return f"No witness ({witness.where}): a deletion of the newest rows with their checkpoints cannot be told."
