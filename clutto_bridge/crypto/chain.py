"""The audit log's hash chain and its signed checkpoints, and the check of both.

Each row's hash is SHA-256 over the canonical encoding of the row (its id, time, team,
actor, action, target, detail) together with the hash of the row before it, so editing,
deleting or reordering a row breaks the chain at that row. Every so often the bridge signs
the newest row's hash with its Ed25519 key (a checkpoint), so rewriting the whole chain
from some row on is caught too: the new hashes differ from the signed ones.

Pure computation: rows and checkpoints come in, problems come out; reading them from the
database or from an export file is someone else's job.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clutto_bridge.crypto.canonical import b64url, canonical, from_b64url
from clutto_bridge.crypto.signing import jwk_thumbprint, key_id, public_key_from_jwk

GENESIS = "0" * 64
"""The previous hash of the first row."""
CHECKPOINT = "clutto.audit.checkpoint.v1"
"""What a checkpoint signature is over, so it can never be taken for another signed message."""


class ChainedRow(Protocol):
    id: int
    ts: int
    team_id: str | None
    actor: str | None
    action: str
    target: str | None
    detail: Any
    prev_hash: str | None
    hash: str | None


class SignedHead(Protocol):
    id: int
    row_id: int
    head_hash: str
    ts: int
    key_id: str
    signature: str


def row_hash(
    id: int,
    ts: int,
    team_id: str | None,
    actor: str | None,
    action: str,
    target: str | None,
    detail: Any,
    prev_hash: str,
) -> str:
    content = {
        "id": id,
        "ts": ts,
        "team_id": team_id,
        "actor": actor,
        "action": action,
        "target": target,
        "detail": detail,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical(content)).hexdigest()


def hash_of(row: ChainedRow) -> str:
    """The hash ``row`` should carry, given the previous hash it names."""
    return row_hash(row.id, row.ts, row.team_id, row.actor, row.action, row.target, row.detail, row.prev_hash or "")


def checkpoint_message(row_id: int, head_hash: str, ts: int, signer: str) -> bytes:
    return canonical({"type": CHECKPOINT, "row_id": row_id, "head_hash": head_hash, "ts": ts, "key_id": signer})


def sign_head(key: Ed25519PrivateKey, row_id: int, head_hash: str, ts: int) -> tuple[str, str]:
    """(key id, signature) of a checkpoint over row ``row_id`` whose hash is ``head_hash``."""
    signer = key_id(key.public_key())
    return signer, b64url(key.sign(checkpoint_message(row_id, head_hash, ts, signer)))


@dataclass(frozen=True)
class Problem:
    """The first thing that does not match, said so an operator can find it."""

    row_id: int | None
    what: str

    def __str__(self) -> str:
        return self.what


@dataclass
class Summary:
    rows: int = 0
    last_row: int | None = None
    checkpoints: int = 0
    signed_up_to: int | None = None
    keys: dict[str, int] = field(default_factory=dict)  # key id -> checkpoints it signed
    unsigned: int = 0
    """Rows after the last checkpoint: chained, but not yet covered by a signature."""
    witnessed: SignedHead | None = None
    """The witness's checkpoint, once the log was found to hold it."""


class ChainCheck:
    """Feed the rows in id order; the first problem is returned and the check stops there.

    ``keys`` are the recorded public keys (JWK by key id); ``trusted``, when given, is the
    set of key ids the operator vouches for, and a checkpoint signed by any other fails.
    ``witness``, when given, is the last checkpoint as kept outside the database: the log
    must reach its row with its hash, and still hold that checkpoint.
    """

    def __init__(
        self,
        checkpoints: Iterable[SignedHead],
        keys: Mapping[str, Mapping[str, str]],
        trusted: set[str] | None = None,
        witness: SignedHead | None = None,
    ) -> None:
        self.pending = sorted(checkpoints, key=lambda c: (c.row_id, c.id))
        self.held = {_signed(c) for c in self.pending}
        self.witness = witness
        self.keys = keys
        self.trusted = trusted
        self.summary = Summary()
        self.last_id: int | None = None
        self.last_hash = GENESIS

    def add(self, row: ChainedRow) -> Problem | None:
        problem = self._passed_checkpoints(row.id) or self._passed_witness(row.id) or self._row(row)
        if problem:
            return problem
        if self.witness is not None and self.witness.row_id == row.id:
            problem = self._witness_met(self.witness, row)
            if problem:
                return problem
        self.last_id, self.last_hash = row.id, row.hash or ""
        s = self.summary
        s.rows += 1
        s.last_row = row.id
        s.unsigned += 1
        while self.pending and self.pending[0].row_id == row.id:
            problem = self._checkpoint(self.pending.pop(0), row)
            if problem:
                return problem
        return None

    def finish(self) -> Problem | None:
        """After the last row: every checkpoint must have met its row, and so the witness."""
        return self._passed_checkpoints(None) or self._passed_witness(None)

    def _passed_witness(self, next_id: int | None) -> Problem | None:
        """The witness's row, passed or never reached: the log lost it."""
        w = self.witness
        if w is None or self.summary.witnessed is not None or (next_id is not None and next_id <= w.row_id):
            return None
        missing = f"checkpoint {w.id} (rows up to {w.row_id}) is missing"
        if next_id is not None:
            return Problem(
                w.row_id, f"row {w.row_id} is missing (deleted): the witness holds checkpoint {w.id} over it"
            )
        if self.last_id is None:
            return Problem(w.row_id, f"{missing}: the log was emptied")
        return Problem(w.row_id, f"{missing}: the log was truncated after row {self.last_id}")

    def _witness_met(self, w: SignedHead, row: ChainedRow) -> Problem | None:
        if row.hash != w.head_hash:
            return Problem(
                row.id,
                f"row {row.id}: its hash differs from the one the witness holds (checkpoint "
                f"{w.id}): the log was rewritten up to row {row.id}",
            )
        if _signed(w) not in self.held:
            return Problem(
                row.id,
                f"checkpoint {w.id} (rows up to {w.row_id}) is missing: it was deleted from the "
                "log, the witness holds it",
            )
        self.summary.witnessed = w
        return None

    def _row(self, row: ChainedRow) -> Problem | None:
        if not row.hash or row.prev_hash is None:
            return Problem(row.id, f"row {row.id}: carries no hash (it was added outside the bridge)")
        content_ok = hash_of(row) == row.hash
        link_ok = row.prev_hash == self.last_hash
        if content_ok and link_ok:
            return None
        if not link_ok and not content_ok:
            return Problem(
                row.id,
                f"row {row.id}: changed or moved: its content does not match its hash, and it "
                f"does not follow {self._previous()}",
            )
        if not content_ok:
            return Problem(
                row.id, f"row {row.id}: edited: its content ({row.action}, target {row.target}) does not match its hash"
            )
        if self.last_id is None:
            return Problem(row.id, f"row {row.id}: does not start the chain: the rows before it were deleted")
        if row.id > self.last_id + 1:
            gap = str(self.last_id + 1) if row.id == self.last_id + 2 else f"{self.last_id + 1} to {row.id - 1}"
            return Problem(row.id, f"row {row.id}: does not follow row {self.last_id}: row {gap} is missing (deleted)")
        return Problem(
            row.id,
            f"row {row.id}: does not follow row {self.last_id}: one of the two was rewritten, or rows were reordered",
        )

    def _previous(self) -> str:
        return "the start of the log" if self.last_id is None else f"row {self.last_id}"

    def _passed_checkpoints(self, next_id: int | None) -> Problem | None:
        """A checkpoint whose row the chain went past without meeting: that row is gone."""
        if self.pending and (next_id is None or self.pending[0].row_id < next_id):
            c = self.pending[0]
            return Problem(c.row_id, f"row {c.row_id} is missing (deleted): checkpoint #{c.id} signed it")
        return None

    def _checkpoint(self, c: SignedHead, row: ChainedRow) -> Problem | None:
        where = f"checkpoint #{c.id} (row {c.row_id})"
        jwk = self.keys.get(c.key_id)
        if jwk is None:
            return Problem(c.row_id, f"{where}: signed by key {c.key_id}, whose public key is not recorded")
        if self.trusted is not None and c.key_id not in self.trusted:
            return Problem(c.row_id, f"{where}: signed by key {c.key_id}, which is not among the trusted keys")
        try:
            if jwk_thumbprint(dict(jwk)) != c.key_id:
                return Problem(c.row_id, f"{where}: the public key recorded as {c.key_id} is another key")
            public_key_from_jwk(dict(jwk)).verify(
                from_b64url(c.signature), checkpoint_message(c.row_id, c.head_hash, c.ts, c.key_id)
            )
        except (InvalidSignature, ValueError, KeyError, TypeError):
            return Problem(c.row_id, f"{where}: its signature does not verify with key {c.key_id}")
        if c.head_hash != row.hash:
            since = f"row {self.summary.signed_up_to}" if self.summary.signed_up_to is not None else "the start"
            return Problem(
                row.id,
                f"row {row.id}: its hash differs from the one {where} signed: the rows after "
                f"{since} up to row {row.id} were rewritten",
            )
        s = self.summary
        s.checkpoints += 1
        s.signed_up_to = row.id
        s.unsigned = 0
        s.keys[c.key_id] = s.keys.get(c.key_id, 0) + 1
        return None


def _signed(c: SignedHead) -> tuple[int, int, str, str]:
    return c.id, c.row_id, c.head_hash, c.signature
