"""The profile policy (P2): which fields exist, how they are checked, what a member's name must be.

Pure decisions only. The four fields are the whole of a Clutto profile; the operator's
config narrows them to the allowed and required ones. The display name in team rooms is
rendered from a template, and the avatar is the profile photo or nothing.
"""

from __future__ import annotations

import io
import string
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from clutto_bridge.policy.characters import refused_character

FIELDS = ("first_name", "last_name", "designation", "photo")
TEXT_FIELDS = ("first_name", "last_name", "designation")
ENFORCE_MODES = ("reset", "warn", "off")
# Names of the profile fields as custom profile fields (MSC4133) on the homeserver.
CUSTOM_FIELD_PREFIX = "io.clutto."


class ProfileError(ValueError):
    """Input that breaks the profile policy; the message says what and how to fix it."""


@dataclass(frozen=True)
class ProfileRules:
    allowed: tuple[str, ...]
    required: tuple[str, ...]
    max_length: int
    photo_types: tuple[str, ...]
    photo_max_bytes: int
    display_name: str
    enforce: str


def template_fields(template: str) -> list[str]:
    """The field names a display name template uses; unknown names raise ValueError."""
    names = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if name not in TEXT_FIELDS or spec or conversion:
            raise ValueError(f"may use only {{first_name}}, {{last_name}} and {{designation}}, found {{{name}}}")
        names.append(name)
    if not names:
        raise ValueError("must use at least one field, for example {first_name} {last_name}")
    return names


def check_field(rules: ProfileRules, field: str) -> str:
    field = field.strip().lower()
    if field not in FIELDS:
        raise ProfileError(f"Unknown profile field {field!r}. The fields are {', '.join(FIELDS)}.")
    if field not in rules.allowed:
        raise ProfileError(
            f"The field {field} is not kept by this server's policy. Allowed: {', '.join(rules.allowed)}."
        )
    return field


def check_text(rules: ProfileRules, field: str, value: Any) -> str:
    """A name or designation: trimmed, single spaces, no control or invisible characters."""
    if not isinstance(value, str):
        raise ProfileError(f"The {field} must be text.")
    text = " ".join(value.split())
    if not text:
        raise ProfileError(f"The {field} must not be empty; use `profile unset {field}` to remove it.")
    if len(text) > rules.max_length:
        raise ProfileError(f"The {field} has {len(text)} characters; at most {rules.max_length} are allowed.")
    refused = refused_character(text)
    if refused:
        raise ProfileError(f"The {field} must not contain control or invisible characters: {refused.describe()}.")
    return text


def check_photo_uri(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("mxc://") or value.count("/") != 3:
        raise ProfileError("The photo must be an image uploaded to the homeserver: an mxc://server/id URI.")
    server, media_id = value[len("mxc://") :].split("/")
    if not server or not media_id:
        raise ProfileError("The photo must be an image uploaded to the homeserver: an mxc://server/id URI.")
    return value


def check_photo_media(rules: ProfileRules, content_type: str, size: int) -> None:
    """The uploaded file behind a photo URI as the homeserver describes it: an allowed image
    type, not too large. Checked before the file is fetched; its content is checked after."""
    kind = content_type.split(";")[0].strip().lower()
    if kind not in rules.photo_types:
        raise ProfileError(f"The photo is {kind or 'of unknown type'}; allowed are {', '.join(rules.photo_types)}.")
    if size > rules.photo_max_bytes:
        raise ProfileError(f"The photo has {size:,} bytes; at most {rules.photo_max_bytes:,} are allowed.")


# The first bytes of each image type (the declared content type is only a claim).
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)
# What Pillow calls the formats above.
_PILLOW_FORMATS = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/bmp": "BMP",
}


def sniff_image(data: bytes) -> str | None:
    """The image type the file's first bytes announce, or None when they announce none we know."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in _SIGNATURES if data.startswith(magic)), None)


def image_size(data: bytes, kind: str) -> tuple[int, int] | None:
    """Width and height, when an image library reads the file as an intact ``kind`` image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[kind]]) as image:
                size = image.size
                image.verify()
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        SyntaxError,
        ValueError,
        KeyError,
        EOFError,
    ):
        return None
    return size if size[0] > 0 and size[1] > 0 else None


def check_photo_content(rules: ProfileRules, content_type: str, data: bytes) -> tuple[int, int]:
    """The photo's bytes: an allowed image type by its content, the type it was uploaded as,
    and an image whose dimensions can be read. Returns (width, height)."""
    declared = content_type.split(";")[0].strip().lower()
    kind = sniff_image(data)
    if kind is None:
        raise ProfileError(
            f"The photo is not an image: its content is none of {', '.join(_PILLOW_FORMATS)}, "
            f"although it was uploaded as {declared or 'an unknown type'}."
        )
    if kind not in rules.photo_types:
        raise ProfileError(f"The photo is {kind} by its content; allowed are {', '.join(rules.photo_types)}.")
    if kind != declared:
        raise ProfileError(
            f"The photo was uploaded as {declared or 'an unknown type'} but its content is {kind}; "
            "upload it again with its own type."
        )
    size = image_size(data, kind)
    if size is None:
        raise ProfileError(f"The photo starts like {kind} but cannot be read as an image; it may be damaged.")
    return size


def display_name(rules: ProfileRules, profile: Mapping[str, str | None]) -> str | None:
    """The name the template gives, or None while a field it uses is missing."""
    values = {}
    for name in template_fields(rules.display_name):
        value = profile.get(name) if name in rules.allowed else None
        if not value:
            return None
        values[name] = value
    return " ".join(rules.display_name.format(**values).split()) or None


def avatar(rules: ProfileRules, profile: Mapping[str, str | None]) -> str | None:
    return profile.get("photo") if "photo" in rules.allowed else None


def missing_required(rules: ProfileRules, profile: Mapping[str, str | None]) -> list[str]:
    return [f for f in rules.required if not profile.get(f)]


@dataclass(frozen=True)
class Deviation:
    """What differs between a member's Matrix profile in a room and the policy's."""

    displayname: tuple[str | None, str] | None  # (seen, expected)
    avatar: tuple[str | None, str | None] | None

    def __bool__(self) -> bool:
        return self.displayname is not None or self.avatar is not None

    def describe(self) -> str:
        parts = []
        if self.displayname:
            parts.append(f"your display name is {self.displayname[0]!r} but must be {self.displayname[1]!r}")
        if self.avatar:
            parts.append(
                "your avatar must be your profile photo"
                if self.avatar[1]
                else "your avatar must stay empty until you set a profile photo (`profile set photo mxc://...`)"
            )
        return "; ".join(parts)


def deviation(
    rules: ProfileRules, profile: Mapping[str, str | None], seen_name: str | None, seen_avatar: str | None
) -> Deviation:
    """Compare what a room shows with the policy. A name is only enforced once the profile
    has the fields the template needs; the avatar is always the photo or nothing."""
    expected_name = display_name(rules, profile)
    name = (seen_name, expected_name) if expected_name is not None and seen_name != expected_name else None
    expected_avatar = avatar(rules, profile)
    pic = (seen_avatar, expected_avatar) if (seen_avatar or None) != (expected_avatar or None) else None
    return Deviation(name, pic)


def unpublished(custom_fields: Mapping[str, Any], rules: ProfileRules) -> list[str]:
    """Custom profile fields that must not be published: everything except our allowed ones."""
    ours = {CUSTOM_FIELD_PREFIX + f for f in rules.allowed if f in TEXT_FIELDS}
    return sorted(k for k in custom_fields if k not in ("displayname", "avatar_url") and k not in ours)
