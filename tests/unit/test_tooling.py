"""ruff and mypy, run by the test command, with their configuration in pyproject.toml.

Each check runs the tool as a subprocess over the checkout and, on failure, shows what the
tool printed, so a failing run says which file and line to fix. To run one by hand:

    .venv/bin/ruff check .              # lint ([tool.ruff.lint])
    .venv/bin/ruff format --check .     # formatting ([tool.ruff.format])
    .venv/bin/mypy                      # types ([tool.mypy]; strict on policy/, crypto/, db/)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True)


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout[-12000:]}\n{result.stderr[-3000:]}"


def test_ruff_lint_passes() -> None:
    """The rules in [tool.ruff.lint]; most findings fix themselves with `ruff check --fix`."""
    result = run("ruff", "check", "--no-cache", "--output-format", "concise", ".")
    assert result.returncode == 0, explain(result)


def test_ruff_format_check_code_is_formatted() -> None:
    """`ruff format --check`: the code is as `ruff format` writes it ([tool.ruff.format])."""
    result = run("ruff", "format", "--no-cache", "--check", ".")
    assert result.returncode == 0, explain(result)


def test_mypy_passes() -> None:
    """The whole package type-checks, strictly in policy/, crypto/ and db/ ([tool.mypy])."""
    result = run("mypy")
    assert result.returncode == 0, explain(result)
