import pytest

from clutto_bridge.domain import validation
from clutto_bridge.domain.errors import InvalidInput


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Acme", "Acme"),
        ("  Acme   Corp ", "Acme Corp"),
        ("Équipe ☕", "Équipe ☕"),
        ("Developer 👩\u200d💻", "Developer 👩\u200d💻"),
        ("تیم می\u200cخواهم", "تیم می\u200cخواهم"),
        ("टीम क्\u200dष", "टीम क्\u200dष"),
    ],
)
def test_team_names_are_normalised(raw: str, expected: str) -> None:
    assert validation.team_name(raw, 80) == expected


@pytest.mark.parametrize("raw", ["", "   ", "x" * 81, "tab\u0007bell", "zero\u200bwidth", None, 5])
def test_bad_team_names_are_refused(raw) -> None:
    with pytest.raises(InvalidInput):
        validation.team_name(raw, 80)


@pytest.mark.parametrize("raw", ["@alice:example.com", "@a.b-c_d=e/f:localhost", "@x:127.0.0.1:8448", "@x:[::1]"])
def test_user_ids(raw: str) -> None:
    assert validation.user_id(raw) == raw


@pytest.mark.parametrize(
    "raw", ["alice", "@alice", "@Alice:example.com", "@al ice:example.com", "#room:example.com", None]
)
def test_bad_user_ids(raw) -> None:
    with pytest.raises(InvalidInput):
        validation.user_id(raw)


@pytest.mark.parametrize(
    "raw, message",
    [
        ("Acme\u202eevil", "U+202E RIGHT-TO-LEFT OVERRIDE at position 5"),
        ("Ac\u200dme", "U+200D ZERO WIDTH JOINER at position 3"),
        ("tab\u0007bell", "U+0007 (a control character) at position 4"),
    ],
)
def test_refused_team_names_say_which_character_and_where(raw: str, message: str) -> None:
    with pytest.raises(InvalidInput, match="must not contain control or invisible characters") as refused:
        validation.team_name(raw, 80)
    assert message in refused.value.message
    with pytest.raises(InvalidInput) as refused:
        validation.room_name(raw)
    assert message in refused.value.message


def test_a_long_input_is_quoted_by_its_beginning_only() -> None:
    with pytest.raises(InvalidInput) as refused:
        validation.user_id("x" * 10_000)
    assert len(refused.value.message) < 200 and "10,000 characters" in refused.value.message
    with pytest.raises(InvalidInput) as refused:
        validation.team_name("x" * 10_000, 80)
    assert "x" * 41 not in refused.value.message
    assert validation.quoted("short") == "'short'"


def test_roles() -> None:
    assert validation.role("Admin") == "admin"
    assert validation.role("owner", allow_owner=True) == "owner"
    with pytest.raises(InvalidInput, match="exactly one owner") as refused:
        validation.role("owner")
    assert "transfer" in refused.value.message and "invite" not in refused.value.message
    with pytest.raises(InvalidInput, match="Unknown role 'king'; the roles are admin, member, guest.$"):
        validation.role("king")
    with pytest.raises(InvalidInput, match="the roles are owner, admin, member, guest"):
        validation.role("king", allow_owner=True)
