"""The audit log's witness: its last signed head, kept outside the bridge's database.

The hash chain and the checkpoints live in the database, so whoever can write there can
delete the newest rows together with the checkpoints that signed them, and what is left
still verifies. The witness is a small file beside the keyset that the bridge rewrites
whenever it signs a checkpoint: a counter that only grows, and the newest checkpoint. A log
that ends before the witnessed checkpoint was cut, and ``audit verify`` says so.

Written atomically (a temporary file, fsync, rename), readable by its owner only, and under
a lock, so processes on one host never move it backwards.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FORMAT = "clutto.audit.witness"
VERSION = 1
FILE_NAME = "clutto-audit-witness.json"
"""Its name beside the keyset (``security.keyset``)."""


class WitnessError(Exception):
    """The witness file cannot be read or is not a witness; the message names the file."""


@dataclass(frozen=True)
class WitnessedHead:
    """A checkpoint as the witness keeps it (the fields of ``db.audit.Checkpoint``)."""

    id: int
    row_id: int
    head_hash: str
    ts: int
    key_id: str
    signature: str


@dataclass(frozen=True)
class Witness:
    counter: int
    """How many times the witness was written: it only grows."""
    checkpoint: WitnessedHead

    def to_json(self) -> dict[str, Any]:
        return {"type": FORMAT, "version": VERSION, "counter": self.counter, "checkpoint": asdict(self.checkpoint)}

    @classmethod
    def from_json(cls, data: Any) -> Witness:
        """Raises ValueError on anything that is not a witness of this version."""
        if not isinstance(data, dict) or data.get("type") != FORMAT or data.get("version") != VERSION:
            raise ValueError(f"not a clutto-bridge audit witness (version {VERSION})")
        counter, checkpoint = data.get("counter"), data.get("checkpoint")
        if not isinstance(counter, int) or not isinstance(checkpoint, dict):
            raise ValueError("a witness without its counter or checkpoint")
        try:
            head = WitnessedHead(**checkpoint)
        except TypeError:
            raise ValueError("its checkpoint has missing or unknown fields") from None
        if not all(isinstance(getattr(head, f), int) for f in ("id", "row_id", "ts")):
            raise ValueError("its checkpoint's id, row_id and ts must be numbers")
        return cls(counter, head)


class WitnessFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Witness | None:
        """The witness, or None while there is none (before the first checkpoint)."""
        try:
            text = self.path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            return None
        except OSError as e:
            raise WitnessError(f"cannot read {self.path}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise WitnessError(f"{self.path} is not a witness file (not UTF-8 text)") from None
        try:
            return Witness.from_json(json.loads(text))
        except ValueError as e:
            raise WitnessError(f"{self.path}: {'not JSON' if isinstance(e, json.JSONDecodeError) else e}") from None

    def advance(self, head: WitnessedHead) -> Witness | None:
        """Record ``head`` unless the witness already holds it or a later one (another process
        may have written meanwhile); the new witness, or None when nothing changed."""
        with self._locked():
            current = self.load()
            if current is not None and current.checkpoint.row_id >= head.row_id:
                return None
            witness = Witness((current.counter if current else 0) + 1, head)
            self._write(witness)
            return witness

    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self.path.with_name(f".{self.path.name}.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _write(self, witness: Witness) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as stream:
            os.fchmod(stream.fileno(), 0o600)
            json.dump(witness.to_json(), stream, indent=2, sort_keys=True)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, self.path)
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself survives a power cut
        finally:
            os.close(folder)
