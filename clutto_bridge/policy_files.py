"""Reading the policy texts (P8) from disk, for the config layer.

``policy/consent.py`` parses a text it is given and never touches the disk; this module
finds the files. The operator's folder (``policy.consent.texts``, ``config/policy`` in the
example) wins: a checkout has it, with our complete policy. While it does not exist (an
installed wheel run in an empty folder) the placeholder texts packaged with clutto-bridge
are used and a warning names both, so ``pip install`` followed by ``clutto-bridge -c
config.yaml`` starts instead of failing on a folder only a checkout has.
"""

from __future__ import annotations

import logging
from pathlib import Path

from clutto_bridge.policy.consent import VERSION, PolicyText, parse_text

PACKAGED_TEXTS = Path(__file__).with_name("policy_texts")
# A checkout's top-level folder of what an operator edits next to the YAML (absent in a wheel).
CHECKOUT = Path(__file__).resolve().parents[1]
CHECKOUT_TEXTS = CHECKOUT / "config" / "policy"

log = logging.getLogger("clutto.config")


def read_texts(folder: Path) -> dict[str, PolicyText]:
    """Every ``*.md`` in the folder, by version (the file name without .md); ValueError names the file."""
    if not folder.is_dir():
        raise ValueError(f"folder {str(folder)!r} does not exist")
    texts = {}
    for path in sorted(folder.glob("*.md")):
        version = path.stem
        if not VERSION.fullmatch(version):
            raise ValueError(f"{path.name}: the version (file name) may use letters, digits and . _ -")
        try:
            texts[version] = parse_text(version, path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{path.name}: {e}") from None
    return texts


def configured_or_packaged(folder: str) -> tuple[dict[str, PolicyText], bool]:
    """The texts of the configured folder, or the packaged ones while it does not exist.

    Returns the texts and whether they are the packaged placeholders.
    """
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{folder!r} is a file, not a folder of policy texts")
    if path.is_dir():
        return read_texts(path), False
    log.warning(
        "Policy texts folder %r (policy.consent.texts) does not exist; using the placeholder texts "
        "packaged with clutto-bridge from %s. Put your own policy texts in %r.",
        folder,
        PACKAGED_TEXTS,
        folder,
    )
    return read_texts(PACKAGED_TEXTS), True


def shipped_texts() -> Path:
    """The texts a demo or benchmark started from a checkout uses: the checkout's
    ``config/policy`` (our complete policy), or the packaged placeholders in an installed wheel."""
    if (CHECKOUT / "pyproject.toml").is_file() and CHECKOUT_TEXTS.is_dir():
        return CHECKOUT_TEXTS
    return PACKAGED_TEXTS
