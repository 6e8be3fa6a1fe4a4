"""``docs/promises.md``, generated from the registry and from the tests' own declarations.

The tests that prove a promise are found by reading (not running) the integration tests:
each declares what it proves with ``@pytest.mark.promise("P11")``. Defaults come from
``example-config.yaml``, the one place they are written.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path
from typing import Any

from clutto_bridge.config import EXAMPLE_CONFIG
from clutto_bridge.config_upgrade import round_trip_yaml
from clutto_bridge.promises.compliance import yaml_text
from clutto_bridge.promises.registry import PROMISES, Built, Promise

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION_TESTS = ROOT / "tests" / "integration"
PAGE = ROOT / "docs" / "promises.md"
COMMAND = "clutto-bridge promises --markdown > docs/promises.md"


def marked_tests(folder: Path = INTEGRATION_TESTS) -> dict[str, list[str]]:
    """Promise id -> the tests marked as proving it (``tests/integration/x.py::test_y``), any id."""
    proofs: dict[str, list[str]] = defaultdict(list)
    for path in sorted(folder.glob("test_*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for promise_id in _promise_marks(node):
                proofs[promise_id].append(f"{path.relative_to(folder.parents[1]).as_posix()}::{node.name}")
    return dict(proofs)


def _promise_marks(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    ids = []
    for decorator in node.decorator_list:
        if (
            isinstance(decorator, ast.Call)
            and isinstance(decorator.func, ast.Attribute)
            and decorator.func.attr == "promise"
            and isinstance(decorator.func.value, ast.Attribute)
            and decorator.func.value.attr == "mark"
        ):
            ids += [a.value for a in decorator.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return ids


def defaults(example: Path = EXAMPLE_CONFIG) -> dict[str, str]:
    """Every dotted key of the example config with its default as written there."""
    found: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                found[f"{prefix}{key}"] = yaml_text(value)

    walk(round_trip_yaml().load(example.read_text()), "")
    return found


def markdown(proofs: dict[str, list[str]] | None = None) -> str:
    """The whole page. ``proofs`` defaults to the markers of the tests beside this checkout."""
    if proofs is None:
        proofs = marked_tests() if INTEGRATION_TESTS.is_dir() else {}
    values = defaults()
    lines = [
        "# The privacy promises and what keeps them",
        "",
        f"<!-- Generated from clutto_bridge/promises/registry.py by `{COMMAND}`;",
        "     edit the registry, not this page. tests/unit/test_promises.py fails when it is stale. -->",
        "",
        "Clutto's privacy policy makes sixteen promises. clutto-bridge keeps each with a mechanism",
        "that an integration test on a real homeserver checks; a test declares what it proves with",
        '`@pytest.mark.promise("P..")`. For each promise this page names the config keys that shape',
        "it (with their defaults from `example-config.yaml`), the modules that keep it, the tests that",
        "prove it, and what an operator's choices change. What is not built yet is listed with the",
        "issue that builds it.",
        "",
        "To see which promises your own configuration keeps, run `clutto-bridge promises -c config.yaml`",
        "(add `--homeserver-config homeserver.yaml` to check the homeserver's settings too, and",
        "`--strict` to exit non-zero when any promise is weakened); the operator can ask a running",
        "bridge with `GET /_clutto/v1/promises`. Members see the same verdicts for the running",
        "configuration on the privacy portal's privacy page (`/portal/privacy`), beside the cookie registry.",
        "",
        "| # | promise | status | proved by |",
        "| --- | --- | --- | --- |",
    ]
    for p in PROMISES:
        count = len(proofs.get(p.id, []))
        status = p.built.value + (f" (issue {', '.join(map(str, p.issues))})" if p.built is Built.NO else "")
        lines.append(f"| {p.id} | {p.title} | {status} | {count} test{'s' if count != 1 else ''} |")
    for p in PROMISES:
        lines += ["", *_section(p, proofs.get(p.id, []), values)]
    return "\n".join(lines) + "\n"


def _section(p: Promise, tests: list[str], values: dict[str, str]) -> list[str]:
    lines = [f"## {p.id}. {p.title[0].upper()}{p.title[1:]} ({p.built.value})", "", p.statement, ""]
    lines += [f"- {point}" for point in p.mechanism]
    lines.append("")
    if p.settings:
        lines.append("Settings (default): " + ", ".join(f"`{k}` (`{values.get(k, '?')}`)" for k in p.settings) + ".")
        lines.append("")
    if p.enforced_in:
        lines.append("Kept by: " + ", ".join(f"`{m}`" for m in p.enforced_in) + ".")
        lines.append("")
    if tests:
        lines += ["Proved by:", "", *[f"- `{t}`" for t in tests], ""]
    choices = [f"- `{w.key}: {v}`: {w.effect}." for w in p.weakened_by for v in w.values]
    choices += [
        f"- Depends on the homeserver: {h.needs}; otherwise {h.otherwise}"
        + (f" (`clutto-bridge promises --homeserver-config` checks `{h.checked_with}`)." if h.checked_with else ".")
        for h in p.homeserver
    ]
    if choices:
        lines += ["What the operator's choices change:", "", *choices, ""]
    if p.pending:
        lines += ["Not yet enforced:", "", *[f"- {x.what} (issue {x.issue})." for x in p.pending], ""]
    while lines[-1] == "":
        lines.pop()
    return lines
