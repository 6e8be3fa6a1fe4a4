"""Request bodies and query strings of the provisioning API, and reading them.

As Synapse's ``RequestBodyModel``: a strict pydantic model that forbids unknown fields;
the body is parsed into it before the handler runs, and what does not fit becomes a
Matrix-style 400 naming the field. The models check shape and type; what a value may
be (a valid name, an allowed role) is the domain's decision and its message.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Discriminator, Field, RootModel, Tag, ValidationError, model_validator

from clutto_bridge.web.bodies import read_json
from clutto_bridge.web.errors import ApiError


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    """Query strings are text, so values are converted (``true`` becomes a boolean); unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore")


class NewNotice(Body):
    kind: Literal["service", "marketing"] = Field(
        description="a service notice reaches every member; marketing only who opted in",
    )
    text: str
    team_id: str | None = Field(None, description="one team; every team when absent")


class NewTeam(Body):
    name: str
    owner: str | None = Field(
        None,
        description="Matrix user ID of the Customer; required for the operator, a member owns what they create",
    )


class TeamChange(Body):
    """Send one or more fields; absent (or null) ones stay as they are."""

    name: str | None = None
    topic: str | None = None
    avatar_url: str | None = Field(None, description="an mxc:// URI")


class TeamDeletion(Body):
    confirm: str = Field(description="the team's name")


class Invite(Body):
    """Invite an existing account."""

    user_id: str
    role: str = Field("member", description="admin, member or guest")


class NewAccount(Body):
    """Create an account on the homeserver and add it; the password is never stored."""

    username: str
    email: str
    password: str = Field(description="the initial password")
    role: str = Field("member", description="admin, member or guest")


def _member_kind(body: Any) -> str:
    return "account" if isinstance(body, dict) and "username" in body else "invite"


class NewMember(
    RootModel[
        Annotated[
            Annotated[Invite, Tag("invite")] | Annotated[NewAccount, Tag("account")],
            Discriminator(_member_kind),
        ]
    ]
):
    """Either ``user_id`` (an existing account) or ``username``, ``email`` and ``password`` (a new one)."""


class RoleChange(Body):
    role: str = Field(description="admin, member or guest")


class Transfer(Body):
    user_id: str = Field(description="the member who becomes the owner; the old owner becomes admin")


class NewRoom(Body):
    name: str


class DirectChat(Body):
    user_ids: list[str] = Field(min_length=2, max_length=2, description="the two members")


class IntegrationValue(Body):
    value: str = Field(description="a bot's Matrix ID or an https:// widget URL prefix")


class NewScimToken(Body):
    name: str = Field(
        min_length=1, max_length=64, description="what the token is for, e.g. the identity provider's name"
    )


class IntegrationQuery(Query):
    value: str = Field(min_length=1, description="the bot or widget prefix to deny")


class EmailChange(Body):
    enabled: bool = Field(description="true: mail to the team's address is posted (headers only); false: refused")


class RetentionChange(Body):
    max_lifetime: str | None = Field(
        None,
        examples=["30d"],
        description="a duration within the operator's bounds: s, m (minutes), h, d, w or mo (30 days), e.g. 30d, 3mo",
    )
    redact: Literal["auto", "always", "never"] | None = Field(
        None, description="when sweeps redact besides purging; as much as the operator's setting or more"
    )

    @model_validator(mode="after")
    def _something(self) -> RetentionChange:
        if self.max_lifetime is None and self.redact is None:
            raise ValueError("give max_lifetime, redact or both")
        return self


class PlanChange(Body):
    plan: Literal["trial", "paid"]


class ExportSettingChange(Body):
    before_purge: bool


class NewHold(Body):
    room_id: str | None = Field(None, description="one room of the team; the whole team when absent")
    reason: str = ""


class HoldQuery(Query):
    room_id: str | None = Field(None, description="the room whose hold to lift; the team's hold when absent")


class RemovalQuery(Query):
    deactivate: bool = Field(False, description="also deactivate an account Clutto created")


class ProfileChange(RootModel[dict[str, str | None]]):
    """Fields to set (a value) or remove (null): first_name, last_name, designation, photo (mxc:// URI)."""

    model_config = ConfigDict(strict=True)


class ConsentGiven(Body):
    version: str = Field(description="the current policy version")


class VCardFile(RootModel[str]):
    """The vCard file itself, sent with Content-Type text/vcard; the handler reads it."""


B = TypeVar("B", bound=BaseModel)


async def parse_body(request: web.Request, model: type[B]) -> B:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "M_BAD_JSON", "The request body must be a JSON object.")
    try:
        return model.model_validate(body)
    except ValidationError as e:
        raise refusal(e) from None


def parse_query(request: web.Request, model: type[B]) -> B:
    if any("\x00" in value for value in request.query.values()):
        raise ApiError(400, "M_INVALID_PARAM", "A query parameter holds a NUL character.")
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as e:
        raise refusal(e, "query parameter") from None


_TAGS = {"invite", "account"}


def refusal(error: ValidationError, what: str = "field") -> ApiError:
    """One 400 naming every field that does not fit; the first decides the errcode."""
    problems = error.errors(include_url=False)
    sentences = []
    for problem in problems:
        name = ".".join(str(part) for part in problem["loc"] if part not in _TAGS) or "body"
        if problem["type"] == "missing":
            sentences.append(f"Missing {what} {name!r}.")
        elif problem["type"] == "extra_forbidden":
            sentences.append(f"Unknown {what} {name!r}.")
        else:
            sentences.append(f"The {what} {name!r}: {problem['msg']}.")
    errcode = "M_MISSING_PARAM" if problems[0]["type"] == "missing" else "M_INVALID_PARAM"
    return ApiError(400, errcode, " ".join(sentences))
