"""Response bodies of the provisioning API: the one source of what goes over the wire.

A handler builds its answer as one of these models (from the domain's objects, with the
``of`` constructors here) and returns it; the route table serializes it. The generated
OpenAPI document is made from the same models, so the two cannot drift: a field the domain
adds reaches a response only once it is declared here, and a value outside a declared type
(a state, a role) is refused when the model is built, not sent. The domain keeps no JSON
shapes of its own (no ``to_json``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, RootModel

from clutto_bridge.promises.compliance import weakened

if TYPE_CHECKING:
    from clutto_bridge.db.scim import ScimToken as ScimTokenRow
    from clutto_bridge.db.team import TeamRoom as RoomRow
    from clutto_bridge.domain import integrations
    from clutto_bridge.domain.service import TeamView
    from clutto_bridge.policy.analytics import UsageReport as UsageFacts
    from clutto_bridge.promises.compliance import Finding, Verdict


class Output(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @classmethod
    def of(cls, source: Any) -> Self:
        """The model from a domain object (a row, a dataclass) whose attributes have its field
        names; other attributes of ``source`` are left out."""
        return cls.model_validate(source, from_attributes=True)


class MatrixError(Output):
    """Every refusal: a Matrix-style error object with a 4xx (or 500) status."""

    errcode: str = Field(examples=["M_INVALID_PARAM"])
    error: str = Field(description="a sentence for a human")


class OpenAPIDocument(RootModel[dict[str, Any]]):
    """This document."""


class JsonWebKey(Output):
    """An Ed25519 public key (RFC 8037); ``kid`` is its RFC 7638 thumbprint, the ``keyid`` of our signatures."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str = Field(description="the public key, base64url")
    kid: str
    use: Literal["sig"]
    alg: Literal["EdDSA"]


class JsonWebKeySet(Output):
    """The public keys our signatures verify with: the current key first, then earlier ones."""

    keys: list[JsonWebKey]


Role = Literal["owner", "admin", "member", "guest"]
Membership = Literal["invited", "joined", "declined", "left", "removed"]


class Member(Output):
    user_id: str
    role: Role
    membership: Membership


class Room(Output):
    room_id: str
    name: str
    kind: Literal["group", "direct"]
    archived: bool

    @classmethod
    def of(cls, room: RoomRow) -> Self:
        return cls(room_id=room.room_id, name=room.name, kind=room.kind, archived=room.archived_at is not None)


class EncryptedRooms(Output):
    """The rooms whose encryption was turned on now (none when every room was encrypted already)."""

    encrypted: list[Room]


class TeamRoom(Output):
    room_id: str
    name: str
    kind: Literal["group", "direct"]


class Team(Output):
    """A team with its rooms and members."""

    id: str
    name: str
    owner: str
    space_id: str | None
    state: Literal["creating", "active", "deleting"]
    plan: Literal["trial", "paid"]
    created_at: int = Field(description="ms since the epoch")
    trial_ends_at: int = Field(description="ms since the epoch")
    purge_after: int = Field(description="ms since the epoch; a trial team is purged after it")
    rooms: list[TeamRoom]
    members: list[Member]

    @classmethod
    def of(cls, view: TeamView) -> Self:
        t = view.team
        return cls(
            id=t.id,
            name=t.name,
            owner=t.owner,
            space_id=t.space_id,
            state=t.state,
            plan=t.plan,
            created_at=t.created_at,
            trial_ends_at=t.trial_ends_at,
            purge_after=t.purge_after,
            rooms=[TeamRoom.of(r) for r in view.rooms],
            members=[Member.of(m) for m in view.members],
        )


class TeamList(Output):
    teams: list[Team]


class Deleted(Output):
    deleted: str = Field(description="the ID of the deleted team")


class Job(Output):
    """A durable job (retention sweep, export, purge) and how far it got."""

    id: int
    kind: str = Field(examples=["retention_sweep", "export"])
    team_id: str = Field(description="'' for bridge-wide jobs")
    state: Literal["queued", "running", "done", "failed"]
    payload: dict[str, Any]
    progress: dict[str, Any] = Field(description="the job's checkpoint; an export's holds its folder when done")
    attempts: int
    next_run_at: int = Field(description="ms since the epoch")
    created_at: int = Field(description="ms since the epoch")
    updated_at: int = Field(description="ms since the epoch")
    error: str | None


class IntegrationDefaults(Output):
    """The operator's lists, allowed in every team."""

    bots: list[str]
    widget_url_prefixes: list[str]


class Allowlist(Output):
    bots: list[str]
    widget_url_prefixes: list[str]
    defaults: IntegrationDefaults

    @classmethod
    def of(cls, allowlist: integrations.Allowlist) -> Self:
        return cls(
            bots=allowlist.team_bots,
            widget_url_prefixes=allowlist.team_widgets,
            defaults=IntegrationDefaults(
                bots=list(allowlist.global_bots), widget_url_prefixes=list(allowlist.global_widgets)
            ),
        )


class ScimToken(Output):
    id: str
    name: str
    created_by: str | None
    created_at: int = Field(description="ms since the epoch")
    last_used_at: int | None = Field(description="ms since the epoch, to the minute; null: never used")
    revoked_at: int | None


class ScimTokenList(Output):
    tokens: list[ScimToken]
    base_url: str = Field(description="the SCIM base URL to give the identity provider")


class ScimTokenCreated(ScimToken):
    token: str = Field(description="the bearer token; shown only in this answer (Clutto keeps a hash of it)")

    @classmethod
    def created(cls, token: ScimTokenRow, secret: str) -> Self:
        return cls.model_validate({**ScimToken.of(token).model_dump(), "token": secret})


class EmailAddress(Output):
    enabled: bool = Field(description="mail to the address is posted to the team's email room")
    address: str | None = Field(description="the team's address; null until email was switched on once")
    room_id: str | None = Field(description="the team's email room; null until the first mail")


class RetentionBounds(Output):
    min: int = Field(description="seconds")
    max: int = Field(description="seconds")
    default: int = Field(description="seconds")


class RoomSessions(Output):
    room_id: str
    name: str
    kept: int = Field(description="Megolm sessions of the room the bot holds a key of")
    deleted: int = Field(description="sessions sweeps deleted because every message they decrypt expired")


class Retention(Output):
    max_lifetime_seconds: int = Field(description="what applies now: the team's choice or the operator's default")
    team_choice_seconds: int | None = Field(description="null: the operator's default applies")
    cutoff: int = Field(description="ms since the epoch; older messages are removed")
    bounds: RetentionBounds
    purge_available: bool = Field(description="whether the homeserver admin API is there to purge, not only redact")
    redact: str = Field(description="when sweeps redact: auto, always or never (what applies now)")
    team_redact: str | None = Field(description="the team's own choice; null: the operator's setting applies")
    operator_redact: str = Field(description="the operator's setting; a team may choose more redaction, not less")
    holds: list[str] = Field(description="held room IDs; '' (empty) holds every room of the team")
    sweeps: list[Job]
    sessions: list[RoomSessions] = Field(description="the bot's end-to-end encryption keys per room")


class RoomPreview(Output):
    room_id: str
    name: str
    events: int
    held: bool


class RetentionPreview(Output):
    cutoff: int = Field(description="ms since the epoch")
    events: int
    rooms_affected: int
    rooms: list[RoomPreview]


class Holds(Output):
    holds: list[str] = Field(description="held room IDs; '' (empty) holds every room of the team")


class ExportSetting(Output):
    before_purge: bool


class MemberConsent(Output):
    user_id: str
    consented: bool
    last_accepted: str | None = Field(description="the last policy version the member accepted")
    blocked: bool = Field(description="block mode keeps the member from sending in team rooms")


class TeamConsent(Output):
    version: str
    mode: Literal["block", "remind"]
    members: list[MemberConsent]


class NoticeReport(Output):
    delivered: int
    skipped_opted_out: int


class Weakening(Output):
    key: str = Field(examples=["policy.consent.mode"], description="the dotted config key")
    value: str = Field(examples=["remind"], description="its configured value, as written in config.yaml")
    effect: str = Field(description="what members lose with it")

    @classmethod
    def of(cls, finding: Finding) -> Self:
        return cls(key=finding.key, value=finding.value, effect=finding.effect)


class NotYetEnforced(Output):
    what: str
    issue: int = Field(description="the issue that builds it")


class PromiseVerdict(Output):
    id: str = Field(examples=["P8"])
    promise: str
    state: Literal["kept", "partly kept", "weakened", "not applicable", "not yet enforced"]
    weakened_by: list[Weakening]
    depends_on_homeserver: list[str] = Field(
        description="what the promise needs from the homeserver, which the bridge's config cannot show"
    )
    not_yet_enforced: list[NotYetEnforced]

    @classmethod
    def of(cls, verdict: Verdict) -> Self:
        return cls(
            id=verdict.promise.id,
            promise=verdict.promise.statement,
            state=verdict.state.value,
            weakened_by=[Weakening.of(f) for f in verdict.weakened_by],
            depends_on_homeserver=list(verdict.homeserver),
            not_yet_enforced=[NotYetEnforced(what=p.what, issue=p.issue) for p in verdict.pending],
        )


class PromiseReport(Output):
    """Every privacy promise against the running configuration (docs/promises.md explains each)."""

    promises: list[PromiseVerdict]
    weakened: list[str] = Field(description="the ids of the promises a setting weakens")

    @classmethod
    def of(cls, verdicts: list[Verdict]) -> Self:
        return cls(
            promises=[PromiseVerdict.of(v) for v in verdicts], weakened=[v.promise.id for v in weakened(verdicts)]
        )


class Policy(Output):
    version: str
    published: str = Field(description="ISO date")
    reconsent: bool = Field(description="whether this version asks everyone to accept again")
    summary: str
    url: str | None
    text: str
    mode: Literal["block", "remind"]
    versions: list[str]


class Profile(Output):
    user_id: str
    profile: dict[str, str | None] = Field(description="the fields the policy allows; null when unset")
    missing: list[str] = Field(description="required fields not set yet")


class Acceptance(Output):
    version: str
    accepted_at: int = Field(description="ms since the epoch")


class Consent(Output):
    user_id: str
    current_version: str
    consented: bool = Field(description="whether the acceptances cover the current version")
    accepted: list[Acceptance]


class ContactsAllowed(Output):
    allowed: Literal[True]


class ContactsRevoked(Output):
    allowed: Literal[False]
    deleted: int = Field(description="imported contacts deleted with the permission")


class Contact(Output):
    name: str
    emails: list[str]
    matrix_ids: list[str]
    matched: str | None = Field(description="the account on this homeserver the card matched")
    imported_at: int = Field(description="ms since the epoch")


class Contacts(Output):
    contacts: list[Contact]


class ImportReport(Output):
    imported: int = Field(description="contacts new to the member's list")
    matched: list[str] = Field(description="accounts on this homeserver the cards matched")
    already_known: int = Field(
        description="cards that share an email address or Matrix ID with a contact already imported (or an earlier "
        "card of the file): kept once, with any new address added",
    )


class Account(Output):
    email: str
    created_at: int


class TeamMembership(Output):
    team_id: str
    team: str = Field(description="the team's name")
    role: Role
    membership: Membership
    added_at: int


class PrivacyChoice(Output):
    """One choice the member made, oldest first: every one is kept, with its time."""

    choice: str = Field(examples=["marketing"], description="policy_consent, contact_import or marketing")
    value: str = Field(
        examples=["opted_in"],
        description="policy_consent: the version accepted; contact_import: allowed or revoked; "
        "marketing: opted_in or opted_out",
    )
    ts: int = Field(description="when it was made, ms since the epoch")


class MyData(Output):
    """Everything the bridge stores about one person."""

    user_id: str
    generated_by: str
    profile: dict[str, str | None]
    account: Account | None = Field(description="set when Clutto created the account")
    teams: list[TeamMembership]
    policy_consent: list[Acceptance]
    consent_current: bool
    marketing_opted_in: bool
    contact_import_allowed: bool
    contacts: list[Contact]
    choices: list[PrivacyChoice]


class ExportFile(RootModel[bytes]):
    """One file of a finished export, as stored (manifest.json lists them with SHA-256)."""


class UsageCell(Output):
    """Teams that signed up in one week, on one plan, of one size; never fewer than k teams or members."""

    week: str = Field(examples=["2026-W48"], description="ISO week of sign-up (UTC)")
    plan: Literal["trial", "paid"]
    size: Literal["1", "2-5", "6-20", "21-100", "101+"] = Field(description="current members, in buckets")
    teams: int
    members: int = Field(
        description="current (invited or joined) memberships of these teams; a person counts in each team"
    )


class UsageReport(Output):
    """Aggregated, de-identified usage with a k-anonymity floor (analytics.k)."""

    k: int
    suppressed_cells: int = Field(description="cells left out because they describe fewer than k teams or members")
    cells: list[UsageCell]

    @classmethod
    def of(cls, report: UsageFacts) -> Self:
        return cls(k=report.k, suppressed_cells=report.suppressed, cells=[UsageCell.of(c) for c in report.cells])
