import pytest

from clutto_bridge.teams import validation
from clutto_bridge.teams.errors import InvalidInput


@pytest.mark.parametrize("raw, expected", [("Acme", "Acme"), ("  Acme   Corp ", "Acme Corp"), ("Équipe ☕", "Équipe ☕")])
def test_team_names_are_normalised(raw: str, expected: str) -> None:
    assert validation.team_name(raw, 80) == expected


@pytest.mark.parametrize("raw", ["", "   ", "x" * 81, "tab\u0007bell", "zero\u200bwidth", None, 5])
def test_bad_team_names_are_refused(raw) -> None:
    with pytest.raises(InvalidInput):
        validation.team_name(raw, 80)


@pytest.mark.parametrize("raw", ["@alice:example.com", "@a.b-c_d=e/f:localhost", "@x:127.0.0.1:8448", "@x:[::1]"])
def test_user_ids(raw: str) -> None:
    assert validation.user_id(raw) == raw


@pytest.mark.parametrize("raw", ["alice", "@alice", "@Alice:example.com", "@al ice:example.com", "#room:example.com", None])
def test_bad_user_ids(raw) -> None:
    with pytest.raises(InvalidInput):
        validation.user_id(raw)


def test_roles() -> None:
    assert validation.role("Admin") == "admin"
    assert validation.role("owner", allow_owner=True) == "owner"
    with pytest.raises(InvalidInput, match="exactly one owner"):
        validation.role("owner")
    with pytest.raises(InvalidInput, match="Unknown role"):
        validation.role("king")
