import pytest

from clutto_bridge.policy.integrations import outsider_allowed, outsider_reason, widget_allowed

PREFIXES = ["https://meet.example.com/", "https://tools.example.org/board"]


@pytest.mark.parametrize(
    "url, allowed",
    [
        ("https://meet.example.com/room/1", True),
        ("https://MEET.example.com/room/1", True),
        ("https://tools.example.org/board/42", True),
        ("https://tools.example.org/other", False),
        ("http://meet.example.com/room/1", False),
        ("https://meet.example.com.evil.net/room", False),
        ("https://evil.net/?https://meet.example.com/", False),
        ("", False),
        (None, False),
        (42, False),
    ],
)
def test_widget_allowed(url, allowed: bool) -> None:
    assert widget_allowed(url, PREFIXES) is allowed


def test_no_prefixes_allow_nothing() -> None:
    assert not widget_allowed("https://meet.example.com/", [])


def test_outsiders_only_as_allowed_bots() -> None:
    assert outsider_allowed("@github:example.com", {"@github:example.com"})
    assert not outsider_allowed("@stranger:example.com", {"@github:example.com"})


def test_an_outsider_is_told_they_are_not_a_member_not_that_they_are_no_integration() -> None:
    reason = outsider_reason("Acme", "@eve:example.com", former_member=False)
    assert "@eve:example.com is not a member of the team Acme" in reason
    assert "integration" not in reason
    assert (
        outsider_reason("Acme", "@bob:example.com", former_member=True)
        == "@bob:example.com is no longer a member of the team Acme"
    )
