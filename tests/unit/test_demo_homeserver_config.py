"""The demo's homeserver config across starts: a resumed demo finds it as ``doctor --fix``
left it, so doctor changes nothing and leaves no new backup (issue 25, item 11)."""

from __future__ import annotations

from pathlib import Path

from clutto_bridge.demo.setup import bridge_settings, reuse_bridge_config, write_registration
from clutto_bridge.demo.synapse import LocalSynapse
from clutto_bridge.doctor import doctor


def _start(folder: Path, modules: dict | None = None):
    """What the demo does with the homeserver's config at each start, up to starting Synapse."""
    synapse = LocalSynapse(folder / "synapse", port=8008)
    if (folder / "config.yaml").exists():
        settings = reuse_bridge_config(folder, synapse, lambda port: True).settings()
    else:
        settings = bridge_settings(folder, synapse, 29999)
    registration = write_registration(folder, settings)
    synapse.write_config([registration], modules)
    return doctor(settings, synapse.config_path, fix=True, registration=registration, ask_homeserver=False)


def _files(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((folder / "synapse").iterdir()) if p.is_file()}


def test_a_second_start_changes_nothing_and_leaves_no_backup(tmp_path: Path) -> None:
    first = _start(tmp_path)
    assert first.changed and len(first.backups) >= 1  # the demo's fresh config needs doctor's fixes
    after_first = _files(tmp_path)

    second = _start(tmp_path)
    assert (second.changed, second.backups) == ([], [])
    assert second.exit_code == 0
    assert _files(tmp_path) == after_first  # nothing written: doctor's comments are still there
    assert "Set by clutto-bridge doctor --fix" in after_first["homeserver.yaml"]


def test_the_demo_still_sets_what_it_owns_and_drops_a_module_no_longer_installed(tmp_path: Path) -> None:
    module = {"modules": [{"module": "example.Module", "config": {}}]}
    _start(tmp_path, module)
    assert "example.Module" in (tmp_path / "synapse" / "homeserver.yaml").read_text()
    again = _start(tmp_path)
    text = (tmp_path / "synapse" / "homeserver.yaml").read_text()
    assert "example.Module" not in text and "modules:" not in text
    assert (again.changed, again.backups) == ([], [])  # doctor's fixes were kept all the same
