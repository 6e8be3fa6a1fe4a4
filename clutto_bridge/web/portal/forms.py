"""The portal's forms as pydantic models: a form is checked whole before any handler acts on it,
and a bad one is a 400 page that says which field and why."""

from __future__ import annotations

import re
from typing import Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clutto_bridge.policy.ids import USER_ID

CSRF_FIELD = "csrf"
Model = TypeVar("Model", bound=BaseModel)
UserId = Field(pattern=f"^{USER_ID.pattern}$", max_length=255)


class Form(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


SIGN_IN_TOKEN = re.compile(r"[A-Za-z0-9_\-]{20,100}")


class SignIn(Form):
    token: str = Field(pattern=f"^{SIGN_IN_TOKEN.pattern}$")


class CookieForm(Form):
    choice: Literal["all", "necessary", "custom"]
    preferences: Literal["on"] | None = None
    analytics: Literal["on"] | None = None


class ThemeForm(Form):
    theme: Literal["light", "dark"]


class ProfileForm(Form):
    first_name: str = Field(default="", max_length=255)
    last_name: str = Field(default="", max_length=255)
    designation: str = Field(default="", max_length=255)


class MarketingForm(Form):
    marketing: Literal["on", "off"]


class ContactsForm(Form):
    action: Literal["allow", "revoke"]


class RoleForm(Form):
    user_id: str = UserId
    role: Literal["admin", "member", "guest"]


class InviteForm(Form):
    user_id: str = UserId
    role: Literal["admin", "member", "guest"] = "member"


class RemoveForm(Form):
    user_id: str = UserId


class RetentionForm(Form):
    lifetime: str = Field(pattern=r"[0-9a-z ]{2,30}")


class HoldForm(Form):
    action: Literal["on", "off"]
    room_id: str = Field(default="", max_length=255)
    reason: str = Field(default="", max_length=500)


async def parse_form(request: web.Request, model: type[Model]) -> Model:
    """The request's form (the CSRF field aside, which the middleware checked) as ``model``."""
    form = await request.post()
    data = {k: v for k, v in form.items() if k != CSRF_FIELD and isinstance(v, str)}
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problem = e.errors()[0]
        field = ".".join(str(p) for p in problem["loc"]) or "form"
        raise web.HTTPBadRequest(text=f"The form's field {field!r} is not valid: {problem['msg']}.") from None
