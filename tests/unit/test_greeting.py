"""The greeting in a chat someone opens with the bot says what they can do now (issue 25, item 7)."""

from __future__ import annotations

from clutto_bridge.domain.onboarding import greeting


def test_someone_in_no_team_is_told_how_to_create_one_or_be_invited() -> None:
    local = greeting([], may_create=True)
    assert (
        "You are in no team yet" in local
        and "`team create NAME`" in local
        and local.endswith("Send `help` to see what I can do.")
    )
    remote = greeting([], may_create=False)
    assert "You are in no team yet" in remote and "team create" not in remote


def test_someone_in_teams_is_greeted_by_their_roles() -> None:
    text = greeting([("Acme", "owner"), ("Globex", "member"), ("Initech", "member")], may_create=True)
    assert "You own **Acme**; you are a member of **Globex** and **Initech**." in text
    assert "Here you can manage it:" in text and "see your teams (`team info`)" in text
    assert "create a team and manage it" not in text
    member = greeting([("Acme", "guest")], may_create=False)
    assert "You are a guest in **Acme**." in member and "manage" not in member and "team create" not in member
