"""The bot's E2EE device's secrets: the crypto store's pickle key derived from the keyset (never a
constant), re-pickling after a rotation, and the recovery key kept in the keyset file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import olm
import pytest
from mautrix.crypto import OlmAccount

from clutto_bridge.crypto import Keyset, KeysetError, KeysetFile
from clutto_bridge.matrix.crypto import PICKLE_INFO, pickle_key, repickler

MAUTRIX_BRIDGE_CONSTANT = "mautrix.bridge.e2ee"  # what mautrix's bridge module pickles with


def test_the_pickle_key_is_derived_per_keyset_and_key_and_is_no_constant() -> None:
    a, b = Keyset.generate(0), Keyset.generate(0)
    rotated = a.rotated(1)
    keys = {pickle_key(a, a.primary), pickle_key(b, b.primary), pickle_key(rotated, rotated.primary)}
    assert len(keys) == 3 and MAUTRIX_BRIDGE_CONSTANT not in keys
    assert pickle_key(a, a.primary) == pickle_key(rotated, a.primary)  # the old key still opens what it pickled
    # Its own purpose: not the raw key, not the secret of another purpose.
    assert a.derive(a.primary, PICKLE_INFO) != a.primary_key.material
    assert a.derive(a.primary, PICKLE_INFO) != a.derive(a.primary, b"clutto-bridge something else v1")
    with pytest.raises(KeysetError):
        pickle_key(a, a.primary + 1)


def test_a_pickle_under_one_keyset_does_not_open_under_another() -> None:
    a, b = Keyset.generate(0), Keyset.generate(0)
    account = OlmAccount()
    pickled = account.pickle(pickle_key(a, a.primary))
    assert OlmAccount.from_pickle(pickled, pickle_key(a, a.primary), shared=False).identity_key == account.identity_key
    for wrong in (pickle_key(b, b.primary), MAUTRIX_BRIDGE_CONSTANT):
        with pytest.raises(olm.OlmAccountError):
            OlmAccount.from_pickle(pickled, wrong, shared=False)
    assert account.pickle(pickle_key(b, b.primary)) != pickled


def test_repickling_moves_every_kind_of_pickle_to_the_new_key() -> None:
    keyset = Keyset.generate(0)
    rotated = keyset.rotated(1)
    old, new = pickle_key(keyset, keyset.primary), pickle_key(rotated, rotated.primary)
    account = olm.Account()
    outbound = olm.OutboundGroupSession()
    inbound = olm.InboundGroupSession(outbound.session_key)
    bob = olm.Account()
    bob.generate_one_time_keys(1)
    session = olm.OutboundSession(
        account, bob.identity_keys["curve25519"], next(iter(bob.one_time_keys["curve25519"].values()))
    )
    convert = repickler(old, new)
    for table, thing, same in (
        ("crypto_account", account, lambda x: x.identity_keys),
        ("crypto_olm_session", session, lambda x: x.id),
        ("crypto_megolm_inbound_session", inbound, lambda x: x.id),
        ("crypto_megolm_outbound_session", outbound, lambda x: x.id),
    ):
        moved = convert(table, thing.pickle(old))
        kind = type(thing) if table != "crypto_olm_session" else olm.Session
        assert same(kind.from_pickle(moved, new)) == same(thing)
        with pytest.raises((olm.OlmAccountError, olm.OlmSessionError, olm.OlmGroupSessionError)):
            kind.from_pickle(moved, old)


def test_the_recovery_key_is_kept_in_the_keyset_file_through_rotation_and_retirement(tmp_path: Path) -> None:
    file = KeysetFile(tmp_path / "keyset.json")
    first = file.create(0)
    file.store_recovery_key("EsTc 1234 abcd")
    assert os.stat(file.path).st_mode & 0o777 == 0o600
    loaded = file.load()
    assert loaded.recovery_key == "EsTc 1234 abcd" and loaded.keys == first.keys
    assert "EsTc" not in repr(loaded)
    rotated = loaded.rotated(1)
    assert rotated.recovery_key == "EsTc 1234 abcd" and rotated.without(first.primary).recovery_key == "EsTc 1234 abcd"
    file.save(rotated)
    assert json.loads(file.path.read_text())["matrix_recovery_key"] == "EsTc 1234 abcd"
    assert "matrix_recovery_key" not in json.dumps(Keyset.generate(0).to_json())
    bad = {**rotated.to_json(), "matrix_recovery_key": 7}
    with pytest.raises(KeysetError, match="matrix_recovery_key"):
        Keyset.from_json(bad)
