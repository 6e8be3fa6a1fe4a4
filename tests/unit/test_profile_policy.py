"""The profile policy: field checks, the display name template, what counts as a deviation."""

from __future__ import annotations

import pytest

from clutto_bridge.policy import profile as policy

RULES = policy.ProfileRules(
    allowed=("first_name", "last_name", "designation", "photo"),
    required=("first_name", "last_name"),
    max_length=20,
    photo_types=("image/png", "image/jpeg"),
    photo_max_bytes=1000,
    display_name="{first_name} {last_name}",
    enforce="reset",
)
NO_PHOTO = policy.ProfileRules(**{**RULES.__dict__, "allowed": ("first_name", "last_name")})


def test_fields_are_the_four_of_the_policy_and_the_allowed_ones() -> None:
    assert policy.check_field(RULES, " First_Name ") == "first_name"
    with pytest.raises(policy.ProfileError, match="Unknown profile field 'phone'"):
        policy.check_field(RULES, "phone")
    with pytest.raises(policy.ProfileError, match="not kept by this server's policy"):
        policy.check_field(NO_PHOTO, "photo")


@pytest.mark.parametrize(
    "value, message",
    [("", "must not be empty"), ("   ", "must not be empty"), ("x" * 21, "has 21 characters; at most 20"),
     ("Ada\u200b", "control or invisible"), ("Ada\nLovelace", None), (7, "must be text")],
)
def test_text_values(value, message) -> None:
    if message is None:
        assert policy.check_text(RULES, "first_name", value) == "Ada Lovelace"
        return
    with pytest.raises(policy.ProfileError, match=message):
        policy.check_text(RULES, "first_name", value)


def test_photo_must_be_an_uploaded_allowed_image_within_size() -> None:
    assert policy.check_photo_uri("mxc://example.com/abc") == "mxc://example.com/abc"
    for bad in ("https://example.com/a.png", "mxc://example.com", "mxc:///abc", "mxc://a/b/c"):
        with pytest.raises(policy.ProfileError, match="mxc://"):
            policy.check_photo_uri(bad)
    policy.check_photo_media(RULES, "image/png", 1000)
    policy.check_photo_media(RULES, "image/jpeg; charset=binary", 10)
    with pytest.raises(policy.ProfileError, match="image/gif; allowed are image/png, image/jpeg"):
        policy.check_photo_media(RULES, "image/gif", 10)
    with pytest.raises(policy.ProfileError, match="1,001 bytes; at most 1,000"):
        policy.check_photo_media(RULES, "image/png", 1001)


def test_display_name_waits_for_the_fields_the_template_uses() -> None:
    assert policy.display_name(RULES, {"first_name": "Ada"}) is None
    assert policy.display_name(RULES, {"first_name": "Ada", "last_name": "Lovelace"}) == "Ada Lovelace"
    titled = policy.ProfileRules(**{**RULES.__dict__, "display_name": "{last_name}, {first_name} ({designation})"})
    assert policy.display_name(titled, {"first_name": "A", "last_name": "L", "designation": "CTO"}) == "L, A (CTO)"
    with pytest.raises(ValueError):
        policy.template_fields("{photo}")


def test_deviation_of_name_and_avatar() -> None:
    profile = {"first_name": "Ada", "last_name": "Lovelace", "designation": None, "photo": "mxc://s/p"}
    assert not policy.deviation(RULES, profile, "Ada Lovelace", "mxc://s/p")
    found = policy.deviation(RULES, profile, "Countess", "mxc://s/p")
    assert found.displayname == ("Countess", "Ada Lovelace") and found.avatar is None
    assert "must be 'Ada Lovelace'" in found.describe()
    # Without a photo (or where photos are not allowed) the avatar must stay empty.
    found = policy.deviation(NO_PHOTO, profile, "Ada Lovelace", "mxc://s/p")
    assert found.avatar == ("mxc://s/p", None) and found.displayname is None
    # No name is enforced until the profile has the fields the template needs.
    assert not policy.deviation(RULES, {"first_name": "Ada"}, "anything", None)


def test_missing_required_and_unpublished_fields() -> None:
    assert policy.missing_required(RULES, {"first_name": "Ada", "last_name": None}) == ["last_name"]
    fields = {"displayname": "x", "avatar_url": "y", "io.clutto.first_name": "Ada", "io.clutto.phone": "1",
              "m.tz": "Europe/London", "io.clutto.designation": "CTO"}
    assert policy.unpublished(fields, NO_PHOTO) == ["io.clutto.designation", "io.clutto.phone", "m.tz"]
