"""Helpers every test may use."""

from __future__ import annotations

import os
from pathlib import Path

from clutto_bridge.config import EXAMPLE_CONFIG
from clutto_bridge.crypto import KeysetFile


def config_with_tokens(config: Path, **replace: str) -> None:
    """Write the example config with its generated secrets filled in and a keyset beside it
    (so the bridge would start), after replacing each ``old`` text by ``new``. The signing key
    is made beside it when the bridge first needs it."""
    text = EXAMPLE_CONFIG.read_text()
    keyset = config.with_name("keyset.json")
    KeysetFile(keyset).ensure(0)
    text = text.replace("keyset: clutto-keyset.json", f"keyset: {keyset}")
    for letter, token in zip(
        "ahxx", ("as_token: generate", "hs_token: generate", "shared_secret: generate", "metrics_secret: generate")
    ):
        text = text.replace(token, token.replace("generate", letter * 32))  # as_token and hs_token must differ
    for old, new in replace.items():
        text = text.replace(old, new)
    config.write_text(text)


def pytest_configure(config) -> None:
    """Temporary folders on a RAM file system when the machine has one (Linux's /dev/shm):
    Synapse's and the bridges' SQLite databases live under them, and every commit there waits
    for an fsync on disk (a few ms each, thousands of them per run) but not on tmpfs. pytest
    keeps its usual layout and clean-up (``pytest-of-<user>/pytest-N``) under the new root;
    ``--basetemp`` or ``PYTEST_DEBUG_TEMPROOT`` (pytest's own setting) still decide first."""
    if config.option.basetemp or os.environ.get("PYTEST_DEBUG_TEMPROOT") or hasattr(config, "workerinput"):
        return  # xdist workers get their basetemp from the controller
    if _is_tmpfs(Path("/dev/shm")) and os.access("/dev/shm", os.W_OK):
        os.environ["PYTEST_DEBUG_TEMPROOT"] = "/dev/shm"


def _is_tmpfs(path: Path) -> bool:
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return False
    return any(line.split()[1:3] == [str(path), "tmpfs"] for line in mounts if len(line.split()) > 2)


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto`` (pyproject's addopts): one worker per core, at most 4. Each worker starts its
    own Synapse, and the integration tests mostly wait on it, so two workers share two cores
    well; more than 4 Synapses only add memory. ``-n 0`` runs everything in one process.
    ``--dist loadfile`` keeps a file's tests (and the module-scoped second Synapse some files
    start) in one worker."""
    return max(1, min(4, os.cpu_count() or 1))
