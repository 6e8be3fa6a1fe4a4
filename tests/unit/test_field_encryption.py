"""Field encryption (P12): the keyset file and the cipher, on real files and real AES-GCM."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from clutto_bridge.crypto import DecryptionError, FieldCipher, Keyset, KeysetError, KeysetFile, Place
from clutto_bridge.crypto.cipher import Ciphertext

HERE = Place("account", "email", "@alice:example.org")


def test_a_value_round_trips_and_its_ciphertext_names_the_key_and_hides_the_value() -> None:
    cipher = FieldCipher(Keyset.generate(0))
    stored = cipher.encrypt(HERE, "alice@example.org")
    assert "alice" not in stored and stored.startswith(f"enc1:{cipher.primary}:")
    assert cipher.decrypt(HERE, stored) == "alice@example.org"
    assert cipher.encrypt(HERE, None) is None and cipher.decrypt(HERE, None) is None


def test_every_encryption_uses_a_fresh_nonce() -> None:
    cipher = FieldCipher(Keyset.generate(0))
    a, b = (Ciphertext.parse(cipher.encrypt(HERE, "same")) for _ in range(2))
    assert a.sealed[:12] != b.sealed[:12] and a.sealed != b.sealed


@pytest.mark.parametrize(
    "elsewhere",
    [
        Place("account", "email", "@mallory:example.org"),  # another row
        Place("profile", "first_name", "@alice:example.org"),  # another table and column, same row key
        Place("account", "other", "@alice:example.org"),  # another column
    ],
)
def test_a_ciphertext_moved_to_another_place_does_not_decrypt(elsewhere: Place) -> None:
    cipher = FieldCipher(Keyset.generate(0))
    stored = cipher.encrypt(HERE, "alice@example.org")
    with pytest.raises(DecryptionError, match="does not decrypt"):
        cipher.decrypt(elsewhere, stored)


def test_plaintext_and_altered_values_are_refused_not_returned() -> None:
    cipher = FieldCipher(Keyset.generate(0))
    with pytest.raises(DecryptionError, match="not encrypted"):
        cipher.decrypt(HERE, "alice@example.org")
    stored = Ciphertext.parse(cipher.encrypt(HERE, "alice@example.org"))
    flipped = Ciphertext(stored.key_id, stored.sealed[:-1] + bytes([stored.sealed[-1] ^ 1]))
    with pytest.raises(DecryptionError):
        cipher.decrypt(HERE, str(flipped))


def test_another_keyset_cannot_decrypt() -> None:
    stored = FieldCipher(Keyset.generate(0)).encrypt(HERE, "x")
    with pytest.raises(DecryptionError, match="no key"):
        FieldCipher(Keyset.generate(0)).decrypt(HERE, stored)


def test_after_rotation_old_values_decrypt_new_ones_use_the_new_key_and_rewrap_moves_them() -> None:
    old = Keyset.generate(0)
    before = FieldCipher(old).encrypt(HERE, "alice@example.org")
    cipher = FieldCipher(old.rotated(1))
    assert cipher.primary != old.primary
    assert cipher.decrypt(HERE, before) == "alice@example.org"
    rewrapped = cipher.rewrap(HERE, before)
    assert Ciphertext.parse(rewrapped).key_id == cipher.primary
    assert cipher.rewrap(HERE, rewrapped) is None  # already under the primary
    assert cipher.decrypt(HERE, rewrapped) == "alice@example.org"
    with pytest.raises(KeysetError, match="primary"):
        cipher.keyset.without(cipher.primary)
    assert FieldCipher(cipher.keyset.without(old.primary)).decrypt(HERE, rewrapped) == "alice@example.org"


def test_the_email_index_is_keyed_and_ignores_case_but_not_the_address() -> None:
    keyset = Keyset.generate(0)
    a, b = FieldCipher(keyset), FieldCipher(keyset.rotated(1))
    assert a.index("email", "Alice@Example.org ") == b.index("email", "alice@example.org")  # survives rotation
    assert a.index("email", "alice@example.org") != a.index("email", "bob@example.org")
    assert a.index("email", "alice@example.org") != FieldCipher(Keyset.generate(0)).index("email", "alice@example.org")
    assert "alice" not in a.index("email", "alice@example.org")


def test_the_keyset_file_is_created_owner_only_and_not_overwritten(tmp_path: Path) -> None:
    file = KeysetFile(tmp_path / "keyset.json")
    keyset = file.create(0)
    assert os.stat(file.path).st_mode & 0o777 == 0o600
    assert file.load() == keyset
    with pytest.raises(KeysetError, match="exists already"):
        file.create(0)
    assert file.ensure(0) is False and file.load() == keyset


def test_a_keyset_file_others_may_read_is_refused_naming_it(tmp_path: Path) -> None:
    file = KeysetFile(tmp_path / "keyset.json")
    file.create(0)
    os.chmod(file.path, 0o644)
    with pytest.raises(KeysetError, match=f"{file.path} is readable by group or others.*chmod 600"):
        file.load()


@pytest.mark.parametrize(
    "content,problem",
    [
        (None, "does not exist"),
        ("{not json", "is not JSON"),
        (json.dumps({"primary": 1, "keys": []}), "not a keyset"),
        (json.dumps({"primary": 1, "index_secret": "AAAA", "keys": [{"id": 1, "material": "AAAA"}]}), "not a 256-bit"),
    ],
)
def test_a_missing_or_broken_keyset_is_one_line_naming_the_file(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "keyset.json"
    if content is not None:
        path.write_text(content)
        os.chmod(path, 0o600)
    with pytest.raises(KeysetError, match=problem) as caught:
        FieldCipher.from_file(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_running_cipher_takes_up_a_rotated_keyset_file(tmp_path: Path) -> None:
    file = KeysetFile(tmp_path / "keyset.json")
    first = file.create(0)
    cipher = FieldCipher.from_file(file.path, recheck_s=0)
    file.save(first.rotated(1))
    assert cipher.primary != first.primary
    assert Ciphertext.parse(cipher.encrypt(HERE, "x")).key_id == cipher.primary


def test_keys_init_creates_the_keyset_once(tmp_path: Path, capsys) -> None:
    from clutto_bridge.cli import main
    from tests.conftest import config_with_tokens

    config = tmp_path / "config.yaml"
    config_with_tokens(config)
    (tmp_path / "keyset.json").unlink()  # config_with_tokens made one; start without
    assert main(["keys", "init", "-c", str(config)]) == 0
    keyset = KeysetFile(tmp_path / "keyset.json").load()
    assert f"key {keyset.primary} (primary)" in capsys.readouterr().out
    assert main(["keys", "init", "-c", str(config)]) == 1
    assert "exists already" in capsys.readouterr().err
    assert KeysetFile(tmp_path / "keyset.json").load() == keyset
