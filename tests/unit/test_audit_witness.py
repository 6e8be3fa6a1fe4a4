"""The witness, the audit log's last checkpoint kept outside the database: a log cut at its
end together with its checkpoints fails against it, and the file only ever moves forward."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from clutto_bridge import audit_tool
from clutto_bridge.config import ConfigError
from clutto_bridge.crypto import chain
from clutto_bridge.crypto.signing import key_id, public_jwk
from clutto_bridge.crypto.witness import Witness, WitnessedHead, WitnessError, WitnessFile
from clutto_bridge.db.audit import SigningKeyRecord
from tests.unit.helpers import keys_of, make_log


def verify(rows, checkpoints, key, witness) -> tuple[chain.Problem | None, chain.Summary]:
    check = chain.ChainCheck(checkpoints, keys_of(key), witness=witness)
    for row in rows:
        problem = check.add(row)
        if problem:
            return problem, check.summary
    return check.finish(), check.summary


def test_a_log_that_holds_the_witnessed_checkpoint_verifies(key) -> None:
    rows, checkpoints = make_log(34, key)  # checkpoints 1..8 over rows 4..32
    problem, summary = verify(rows, checkpoints, key, checkpoints[-1])
    assert problem is None and summary.witnessed == checkpoints[-1]


def test_rows_deleted_from_the_end_with_their_checkpoints_are_named(key) -> None:
    rows, checkpoints = make_log(32, key)
    problem, _ = verify(rows, checkpoints, key, None)
    assert problem is None  # without a witness the shorter log below would verify too
    problem, _ = verify(rows[:20], checkpoints[:5], key, None)
    assert problem is None
    problem, _ = verify(rows[:20], checkpoints[:5], key, checkpoints[7])
    assert str(problem) == "checkpoint 8 (rows up to 32) is missing: the log was truncated after row 20"


def test_an_emptied_log_is_named(key) -> None:
    rows, checkpoints = make_log(32, key)
    problem, _ = verify([], [], key, checkpoints[7])
    assert str(problem) == "checkpoint 8 (rows up to 32) is missing: the log was emptied"


def test_a_deleted_checkpoint_whose_rows_remain_is_named(key) -> None:
    rows, checkpoints = make_log(32, key)
    problem, _ = verify(rows, checkpoints[:7], key, checkpoints[7])
    assert str(problem) == "checkpoint 8 (rows up to 32) is missing: it was deleted from the log, the witness holds it"


def test_a_log_rebuilt_past_the_witnessed_row_is_caught(key) -> None:
    """Rows deleted from the end and new ones written: ids are reused, the hash differs."""
    rows, checkpoints = make_log(32, key)
    previous = rows[19].hash
    for i in range(20, 32):
        r = replace(rows[i], target="@after-the-cut:x", prev_hash=previous)
        rows[i] = replace(r, hash=chain.hash_of(r))
        previous = rows[i].hash
    problem, _ = verify(rows, checkpoints[:5], key, checkpoints[7])
    assert str(problem) == (
        "row 32: its hash differs from the one the witness holds (checkpoint 8): the log was rewritten up to row 32"
    )


def test_the_witnessed_row_deleted_in_the_middle_is_named(key) -> None:
    rows, checkpoints = make_log(34, key)
    del rows[31]
    problem, _ = verify(rows, checkpoints[:7], key, checkpoints[7])
    assert str(problem) == "row 32 is missing (deleted): the witness holds checkpoint 8 over it"


def head(c) -> WitnessedHead:
    return WitnessedHead(**asdict(c))


def test_the_witness_file_only_moves_forward_and_is_owner_only(tmp_path: Path, key) -> None:
    _, checkpoints = make_log(12, key)
    file = WitnessFile(tmp_path / "witness.json")
    assert file.load() is None
    assert file.advance(head(checkpoints[1])).counter == 1
    assert file.advance(head(checkpoints[0])) is None  # an older checkpoint (another process's) changes nothing
    assert file.advance(head(checkpoints[2])).counter == 2
    assert file.load() == Witness(2, head(checkpoints[2]))
    assert file.path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [".witness.json.lock", "witness.json"]


@pytest.mark.parametrize(
    "content, message",
    [(b"\xff\xfe", "not UTF-8 text"), (b"{", "not JSON"), (b'{"type": "other"}', "not a clutto-bridge audit witness")],
)
def test_a_file_that_is_not_a_witness_is_named(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "witness.json"
    path.write_bytes(content)
    with pytest.raises(WitnessError, match=message):
        WitnessFile(path).load()


def write_export(path: Path, rows, checkpoints, key, witness: Witness | None) -> None:
    record = SigningKeyRecord(key_id(key.public_key()), public_jwk(key.public_key()), 1)
    items = [
        audit_tool.HEADER,
        audit_tool.key_item(record),
        *map(audit_tool.checkpoint_item, checkpoints),
        *([audit_tool.witness_item(witness)] if witness else []),
        *map(audit_tool.row_item, rows),
        audit_tool.end_item(len(rows), len(checkpoints), 1),
    ]
    path.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items))


def test_an_export_is_held_against_the_witness_it_holds_or_the_one_given(tmp_path: Path, key, capsys) -> None:
    rows, checkpoints = make_log(32, key)
    witness = Witness(8, head(checkpoints[7]))
    export = tmp_path / "audit.jsonl"
    write_export(export, rows, checkpoints, key, witness)
    assert audit_tool.verify_file(export, None) == 0
    assert "The witness (held by the export) holds checkpoint 8 over row 32" in capsys.readouterr().out

    write_export(export, rows[:20], checkpoints[:5], key, witness)  # cut before it was exported
    assert audit_tool.verify_file(export, None) == 1
    assert "checkpoint 8 (rows up to 32) is missing: the log was truncated after row 20" in capsys.readouterr().out

    write_export(export, rows[:20], checkpoints[:5], key, None)  # the witness line dropped too
    assert audit_tool.verify_file(export, None) == 0
    assert "No witness (the export holds none; pass --witness FILE)" in capsys.readouterr().out
    given = WitnessFile(tmp_path / "witness.json")
    given.advance(head(checkpoints[7]))
    assert audit_tool.verify_file(export, None, given.path) == 1
    assert "the log was truncated after row 20" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="--witness: .*absent.json does not exist"):
        audit_tool.verify_file(export, None, tmp_path / "absent.json")


def test_an_export_that_is_not_utf8_is_one_line(tmp_path: Path, key, capsys) -> None:
    rows, checkpoints = make_log(8, key)
    export = tmp_path / "audit.jsonl"
    write_export(export, rows, checkpoints, key, None)
    lines = export.read_bytes().splitlines(keepends=True)
    lines[4] = lines[4].replace(b"Zo\xc3\xab", b"Zo\xeb")  # Latin-1, as an editor might save it
    export.write_bytes(b"".join(lines))
    assert audit_tool.verify_file(export, None) == 1
    out = capsys.readouterr().out
    assert out == "The export does not verify: line 5: not UTF-8 text (the file was changed, or is not an export)\n"
