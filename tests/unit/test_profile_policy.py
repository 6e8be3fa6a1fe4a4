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
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("x" * 21, "has 21 characters; at most 20"),
        ("Ada\u200b", "control or invisible"),
        ("Ada\nLovelace", None),
        (7, "must be text"),
    ],
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
    fields = {
        "displayname": "x",
        "avatar_url": "y",
        "io.clutto.first_name": "Ada",
        "io.clutto.phone": "1",
        "m.tz": "Europe/London",
        "io.clutto.designation": "CTO",
    }
    assert policy.unpublished(fields, NO_PHOTO) == ["io.clutto.designation", "io.clutto.phone", "m.tz"]


def _image(kind: str, size: tuple[int, int] = (3, 2)) -> bytes:
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(out, format=kind)
    return out.getvalue()


PNG, JPEG, GIF = _image("PNG"), _image("JPEG"), _image("GIF")


@pytest.mark.parametrize(
    "declared, data, outcome",
    [
        ("image/png", PNG, (3, 2)),
        ("image/jpeg", JPEG, (3, 2)),
        ("image/png; charset=binary", PNG, (3, 2)),
        (
            "image/png",
            b"just some text, uploaded as a PNG",
            "not an image: its content is none of image/png, image/jpeg, image/gif, image/webp, image/bmp, although it was uploaded as image/png",
        ),
        ("image/png", GIF, "is image/gif by its content; allowed are image/png, image/jpeg"),
        ("image/png", JPEG, "uploaded as image/png but its content is image/jpeg"),
        ("image/png", PNG[:30], "starts like image/png but cannot be read"),
        ("image/png", b"\x89PNG\r\n\x1a\n" + b"text after a PNG signature", "starts like image/png but cannot be read"),
        ("image/jpeg", b"\xff\xd8\xff" + b"\x00" * 40, "starts like image/jpeg but cannot be read"),
    ],
)
def test_photo_content_decides_not_the_declared_type(declared: str, data: bytes, outcome) -> None:
    if isinstance(outcome, tuple):
        assert policy.check_photo_content(RULES, declared, data) == outcome
        return
    with pytest.raises(policy.ProfileError, match=outcome):
        policy.check_photo_content(RULES, declared, data)


@pytest.mark.parametrize(
    "data, kind",
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (GIF, "image/gif"),
        (_image("WEBP"), "image/webp"),
        (b"<html></html>", None),
        (b"", None),
    ],
)
def test_sniffing_reads_the_first_bytes(data: bytes, kind: str | None) -> None:
    assert policy.sniff_image(data) == kind


@pytest.mark.parametrize(
    "value, described",
    [
        ("Developer 👩\u200d💻", None),
        ("می\u200cخواهم", None),
        ("Ada\u202e", "U+202E RIGHT-TO-LEFT OVERRIDE at position 4"),
        ("A\u200dda", "U+200D ZERO WIDTH JOINER at position 2"),
    ],
)
def test_profile_text_shares_the_name_rule(value: str, described: str | None) -> None:
    if described is None:
        assert policy.check_text(RULES, "designation", value) == value
        return
    with pytest.raises(policy.ProfileError, match="control or invisible characters") as refused:
        policy.check_text(RULES, "designation", value)
    assert described in str(refused.value)
