"""The audit chain and its checkpoints: a valid log verifies, and each kind of tampering is named
at the row where it happened."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clutto_bridge.crypto import chain
from clutto_bridge.crypto.canonical import canonical
from clutto_bridge.crypto.signing import (
    SigningKeyError,
    create_signing_key,
    jwk_thumbprint,
    key_id,
    load_signing_key,
    public_jwk,
)
from clutto_bridge.db.audit import Checkpoint
from tests.unit.helpers import keys_of, make_log


def verify(rows, checkpoints, keys, trusted=None) -> tuple[chain.Problem | None, chain.Summary]:
    check = chain.ChainCheck(checkpoints, keys, trusted)
    for row in rows:
        problem = check.add(row)
        if problem:
            return problem, check.summary
    return check.finish(), check.summary


def test_a_valid_log_verifies_and_counts_what_is_signed(key) -> None:
    rows, checkpoints = make_log(10, key)
    problem, summary = verify(rows, checkpoints, keys_of(key))
    assert problem is None
    assert (summary.rows, summary.checkpoints, summary.signed_up_to, summary.unsigned) == (10, 2, 8, 2)
    assert summary.keys == {key_id(key.public_key()): 2}


def test_an_edited_row_is_named(key) -> None:
    rows, checkpoints = make_log(10, key)
    rows[5] = replace(rows[5], target="@mallory:x")
    problem, _ = verify(rows, checkpoints, keys_of(key))
    assert problem.row_id == 6 and "row 6: edited" in str(problem)


def test_a_deleted_row_is_named_by_the_gap(key) -> None:
    rows, checkpoints = make_log(10, key)
    del rows[4]
    problem, _ = verify(rows, checkpoints, keys_of(key))
    assert "row 5 is missing" in str(problem)


def test_a_deleted_signed_row_at_the_end_is_named_by_its_checkpoint(key) -> None:
    rows, checkpoints = make_log(8, key)
    problem, _ = verify(rows[:-1], checkpoints, keys_of(key))
    assert problem.row_id == 8 and "row 8 is missing (deleted): checkpoint #2 signed it" in str(problem)


def test_two_rows_swapped_are_named_at_the_first(key) -> None:
    rows, checkpoints = make_log(10, key)
    a, b = rows[2], rows[3]
    rows[2], rows[3] = replace(b, id=3), replace(a, id=4)
    problem, _ = verify(rows, checkpoints, keys_of(key))
    assert problem.row_id == 3 and "changed or moved" in str(problem)


def test_a_rewritten_and_rehashed_tail_is_caught_by_the_checkpoint(key) -> None:
    rows, checkpoints = make_log(8, key)
    previous = rows[4].hash
    for i in range(5, 8):  # rows 6..8 rewritten with fresh, consistent hashes
        r = replace(rows[i], target="@forged:x", prev_hash=previous)
        rows[i] = replace(r, hash=chain.hash_of(r))
        previous = rows[i].hash
    problem, _ = verify(rows, checkpoints, keys_of(key))
    assert problem.row_id == 8 and "rows after row 4 up to row 8 were rewritten" in str(problem)


def test_a_forged_signature_fails(key) -> None:
    rows, checkpoints = make_log(8, key)
    forged = Ed25519PrivateKey.generate()
    _, signature = chain.sign_head(forged, 4, rows[3].hash, 2004)
    checkpoints[0] = replace(checkpoints[0], signature=signature)
    problem, _ = verify(rows, checkpoints, keys_of(key))
    assert "checkpoint #1 (row 4): its signature does not verify" in str(problem)


def test_checkpoints_of_a_rotated_key_still_verify_and_trust_can_be_narrowed(key) -> None:
    rows, checkpoints = make_log(8, key)
    new = Ed25519PrivateKey.generate()
    signer, signature = chain.sign_head(new, 8, rows[7].hash, 3000)
    checkpoints[1] = Checkpoint(2, 8, rows[7].hash, 3000, signer, signature)
    problem, summary = verify(rows, checkpoints, keys_of(key, new))
    assert problem is None and set(summary.keys) == {key_id(key.public_key()), signer}
    problem, _ = verify(rows, checkpoints, keys_of(key, new), trusted={signer})
    assert "not among the trusted keys" in str(problem)


def test_a_recorded_public_key_that_is_not_the_named_key_fails(key) -> None:
    rows, checkpoints = make_log(4, key)
    other = Ed25519PrivateKey.generate()
    keys = {key_id(key.public_key()): public_jwk(other.public_key())}
    problem, _ = verify(rows, checkpoints, keys)
    assert "is another key" in str(problem)


def test_canonical_encoding_is_rfc_8785() -> None:
    # RFC 8785 section 3.2.2: sorted keys, no whitespace, numbers in their shortest form.
    assert canonical({"b": [1.0, "é"], "a": 1e21, "c": None}) == b'{"a":1e+21,"b":[1,"\xc3\xa9"],"c":null}'


def test_key_id_is_the_rfc_7638_thumbprint() -> None:
    # RFC 8037 appendix A.3: the thumbprint of the example Ed25519 key.
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert jwk_thumbprint(jwk) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_the_signing_key_file_is_owner_only_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    key = create_signing_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert key_id(load_signing_key(path).public_key()) == key_id(key.public_key())
    with pytest.raises(SigningKeyError, match="exists already"):
        create_signing_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(SigningKeyError, match="readable by group or others"):
        load_signing_key(path)
    path.write_text("not a key")
    os.chmod(path, 0o600)
    with pytest.raises(SigningKeyError, match="not an unencrypted PEM"):
        load_signing_key(path)
