"""The homeserver's YAML files as doctor reads and edits them: ruamel.yaml round trip, so
comments stay; a backup beside each file before it is written; only the keys a check names."""

from __future__ import annotations

import io
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from clutto_bridge.doctor.checks import Change

_NESTED_MAP = re.compile(r"^[^\s#-][^:#]*:\s*(#.*)?\n( +)[^\s#-]", re.M)
_NESTED_SEQ = re.compile(r"^[^\s#-][^:#]*:\s*(#.*)?\n( *)- ", re.M)


class DoctorError(Exception):
    """A file doctor cannot read or write: one line for the operator."""


@dataclass
class YamlFile:
    path: Path
    data: Any
    yaml: YAML

    @classmethod
    def load(cls, path: Path) -> YamlFile:
        try:
            text = path.read_text()
        except OSError as e:
            raise DoctorError(f"cannot read {path}: {e.strerror}") from None
        yaml = _yaml_like(text)
        try:
            data = yaml.load(text)
        except YAMLError:
            raise DoctorError(f"{path} is not valid YAML") from None
        if not isinstance(data, dict):
            raise DoctorError(f"{path} is not a YAML map")
        return cls(path, data, yaml)

    def apply(self, change: Change) -> None:
        """Set (or append to) the key a change names, creating maps on the way. A key new at
        the top of the file gets a comment saying who added it and why."""
        top = change.path[0]
        new_top = isinstance(top, str) and top not in self.data
        node = self.data
        for part in change.path[:-1]:
            if isinstance(node, dict) and not isinstance(node.get(part), (dict, list)):
                node[part] = CommentedMap()
            node = node[part]
        last = change.path[-1]
        if change.append:
            if not isinstance(node.get(last) if isinstance(node, dict) else node[last], list):
                node[last] = CommentedSeq()
            node[last].append(change.value)
        else:
            node[last] = change.value
        if new_top and change.why:
            self.data.yaml_set_comment_before_after_key(top, before=f"Set by clutto-bridge doctor --fix: {change.why}.")

    def save_with_backup(self, now: float | None = None) -> Path | None:
        """Copy the file beside itself (``NAME.clutto-backup-YYYYmmddTHHMMSS``), then write the
        new one atomically with the old one's permissions. A file whose text would not change
        is neither backed up nor written (None): running ``--fix`` again leaves no trace."""
        stream = io.StringIO()
        self.yaml.dump(self.data, stream)
        text = stream.getvalue()
        if text == self.path.read_text():
            return None
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
        backup = self.path.with_name(f"{self.path.name}.clutto-backup-{stamp}")
        shutil.copy2(self.path, backup)
        tmp = self.path.with_name(f".{self.path.name}.doctor.tmp")
        tmp.write_text(text)
        shutil.copymode(self.path, tmp)
        os.replace(tmp, self.path)
        return backup


def _yaml_like(text: str) -> YAML:
    """A round-trip YAML that writes with the file's own indentation (Synapse writes
    homeserver.yaml with 2 spaces and its log config with 4)."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    nested = _NESTED_MAP.search(text)
    mapping = len(nested.group(2)) if nested else 2
    seq = _NESTED_SEQ.search(text)
    offset = len(seq.group(2)) if seq else mapping
    yaml.indent(mapping=mapping, sequence=offset + 2, offset=offset)
    return yaml


def resolve(path: Any, beside: Path) -> Path:
    """A path from homeserver.yaml: absolute as written, relative to that file's folder otherwise."""
    candidate = Path(str(path)).expanduser()
    return candidate if candidate.is_absolute() else beside.parent / candidate
