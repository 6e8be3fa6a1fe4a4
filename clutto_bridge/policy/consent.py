"""Policy versions and consent (P8): which text is current and who has agreed to it.

Policy texts are Markdown files ``<version>.md`` with a YAML front matter::

    ---
    published: 2026-01-15
    reconsent: true          # members must accept this version again
    summary: One paragraph the bot sends.
    url: https://example.com/privacy   # optional: where the full text is published
    ---
    The full text ...

Pure logic: texts arrive as strings. Finding and reading the files is the config layer's
job (``clutto_bridge/policy_files.py``), once at config load.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

CONSENT_MODES = ("block", "remind")
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")


@dataclass(frozen=True)
class PolicyText:
    version: str
    published: dt.date
    reconsent: bool
    summary: str
    text: str
    url: str = ""


def parse_text(version: str, raw: str) -> PolicyText:
    """One policy file; ValueError names what is wrong."""
    if not raw.startswith("---\n"):
        raise ValueError("must start with a front matter block between '---' lines")
    try:
        head, body = raw[4:].split("\n---\n", 1)
    except ValueError:
        raise ValueError("the front matter block is not closed with a '---' line") from None
    try:
        meta = YAML(typ="safe").load(head) or {}
    except YAMLError as e:
        raise ValueError(f"front matter is not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(meta, dict):
        raise ValueError("front matter must be a map")
    published = meta.get("published")
    if not isinstance(published, dt.date):
        raise ValueError("front matter needs 'published: YYYY-MM-DD'")
    reconsent = meta.get("reconsent", True)
    if not isinstance(reconsent, bool):
        raise ValueError("'reconsent' must be true or false")
    summary = meta.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        raise ValueError("front matter needs a 'summary'")
    url = meta.get("url", "") or ""
    if url and not (isinstance(url, str) and url.startswith("https://")):
        raise ValueError("'url' must be an https:// address")
    if not body.strip():
        raise ValueError("the policy text after the front matter is empty")
    return PolicyText(version, published, reconsent, " ".join(summary.split()), body.strip(), url)


def ordered(texts: Iterable[PolicyText]) -> list[PolicyText]:
    """Oldest first: by publication date, then version name."""
    return sorted(texts, key=lambda t: (t.published, t.version))


def required_version(texts: dict[str, PolicyText], current: str) -> str:
    """The oldest version whose acceptance still counts: the newest re-consent version up to current."""
    history = [t for t in ordered(texts.values()) if (t.published, t.version) <= (texts[current].published, current)]
    for text in reversed(history):
        if text.reconsent:
            return text.version
    return history[0].version


def has_consented(texts: dict[str, PolicyText], current: str, accepted: Iterable[str]) -> bool:
    """Whether accepted versions cover the current policy (a version since the last re-consent one)."""
    floor = texts[required_version(texts, current)]
    for version in accepted:
        text = texts.get(version)
        if text is not None and (text.published, text.version) >= (floor.published, floor.version):
            return True
    return False
