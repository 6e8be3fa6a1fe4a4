"""An audit export verifies on its own; a changed, cut or foreign file fails with the line or
row named (`clutto-bridge audit verify --file`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clutto_bridge import audit_tool
from clutto_bridge.crypto.signing import key_id, public_jwk
from clutto_bridge.db.audit import SigningKeyRecord
from tests.unit.helpers import make_log


@pytest.fixture
def export(tmp_path: Path) -> Path:
    key = Ed25519PrivateKey.generate()
    rows, checkpoints = make_log(9, key)
    record = SigningKeyRecord(key_id(key.public_key()), public_jwk(key.public_key()), 1)
    items = [
        audit_tool.HEADER,
        audit_tool.key_item(record),
        *map(audit_tool.checkpoint_item, checkpoints),
        *map(audit_tool.row_item, rows),
        audit_tool.end_item(len(rows), len(checkpoints), 1),
    ]
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items))
    return path


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def test_an_export_verifies_with_a_summary(export: Path, capsys) -> None:
    assert audit_tool.verify_file(export, None) == 0
    out = capsys.readouterr().out
    assert "9 rows up to row 9, chained without a break" in out and "2 checkpoint(s) up to row 8" in out
    assert "1 row(s) after the last checkpoint are chained but not signed yet" in out


def test_a_cut_file_fails(export: Path, capsys) -> None:
    export.write_text("".join(lines(export)[:-1]))
    assert audit_tool.verify_file(export, None) == 1
    assert "ends before its end line" in capsys.readouterr().out


def test_a_dropped_row_line_fails_on_the_counts_or_the_chain(export: Path, capsys) -> None:
    kept = lines(export)
    del kept[-2]  # the last row, after the last checkpoint: only the end line's count can tell
    export.write_text("".join(kept))
    assert audit_tool.verify_file(export, None) == 1
    assert "should hold 9 rows" in capsys.readouterr().out


def test_a_broken_line_is_named(export: Path, capsys) -> None:
    text = lines(export)
    text[5] = text[5][:-3] + "\n"
    export.write_text("".join(text))
    assert audit_tool.verify_file(export, None) == 1
    assert "line 6: not valid JSON" in capsys.readouterr().out


def test_a_file_that_is_not_an_export_is_refused(tmp_path: Path, capsys) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text('{"type": "row", "id": 1}\n')
    assert audit_tool.verify_file(other, None) == 1
    assert "not a clutto-bridge audit export" in capsys.readouterr().out
