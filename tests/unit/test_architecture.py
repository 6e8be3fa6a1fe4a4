"""The layering docs/development/layering.md describes, checked on the code itself."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "clutto_bridge"
# SQL statements as they appear in string literals: a keyword that starts a statement,
# followed by what it acts on.
SQL = re.compile(
    r"""["'][^"'\n]*\b(SELECT\s+\S|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX)|ALTER\s+TABLE)""",
)


def test_import_linter_contracts_hold() -> None:
    """Imports go one way: the contracts in pyproject.toml ([tool.importlinter])."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "broken" in result.stdout and ", 0 broken" in result.stdout


def sql_outside_db() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if PACKAGE / "db" in path.parents:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if SQL.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_no_sql_outside_db() -> None:
    assert sql_outside_db() == []


def test_the_sql_check_finds_sql(tmp_path: Path) -> None:
    """The pattern recognises the statements the stores write (so the check above can fail)."""
    samples = [
        '"SELECT user_id FROM team_member WHERE team_id=$1"',
        "'INSERT INTO contact (owner) VALUES ($1)'",
        '"UPDATE team SET name=$1 WHERE id=$2"',
        'f"DELETE FROM {table} WHERE {column}=$1"',
    ]
    assert all(SQL.search(s) for s in samples)
    assert not SQL.search('"Select the team you mean, then update its name"')
