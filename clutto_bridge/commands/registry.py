"""Command registration by decorator, with the help text and the requirements beside each handler.

A command declares its arguments, whether it is about the team here (and needs its owner, a
manager of it, or any member), and whether it belongs only in the chat with the bot. The registry checks those before the
handler runs and writes the usage line from the declaration, so no handler repeats the
preamble.

Where a command may be answered: anything about a team, or that shows a team's or a person's
data (``team=``, ``discloses=True``), only in that team's rooms or in the user's chat with the
bot; a personal command (``private=True``) only in the chat. In any other room (one a user made
and invited the bot to) the bot answers with a pointer to the chat instead.

``help`` is generated from what is registered, so it never lists a command that does not
exist. Replies are notices with a plain-text body and an HTML body rendered from Markdown,
replying to the command (in its thread) and mentioning the users they name.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from clutto_bridge.context import Services
from clutto_bridge.domain.errors import InvalidInput, NotAllowed, NotFound
from clutto_bridge.domain.formatting import Message, prose
from clutto_bridge.domain.notices import room_link
from clutto_bridge.domain.service import MANAGERS

if TYPE_CHECKING:
    from clutto_bridge.db.team import Team

PERSONAL = "That is personal: send it in your direct chat with me, not in a team room."
# In a room that is neither a team's room nor the chat with the bot: where to ask instead.
PERSONAL_ELSEWHERE = "That is personal: I answer it only in our direct chat, {link}"
TEAM_ELSEWHERE = "I answer that only in your team's rooms or in our direct chat, {link}"

# A reply naming more users than this is a listing: they are shown as pills but not notified;
# the sender of the command always is. A reply that lists (``listing=True``: team info, contacts,
# import results) notifies none of the users it names, however few.
MAX_NOTIFIED = 3

TeamNeed = Literal["own", "manage", "member"] | None
# Who a command about the team is for, as help and the commands page say it.
WHO = {"own": "owner", "manage": "owner, admins", "member": "members"}

# The order of the sections in ``help``; a section not named here comes after these.
SECTIONS = ("Teams", "Members", "Rooms", "Retention", "Integrations", "Profile and privacy")

# A placeholder shown as an example of its form in usage lines (help keeps the placeholder).
_EXAMPLES = {"USER": "@user:server"}
# Lower-case words, alternatives separated by "|": the argument must be one of them.
_KEYWORDS = re.compile(r"[a-z][a-z-]*(\|[a-z][a-z-]*)*")


@dataclass
class CommandEvent:
    ctx: Services
    room_id: str
    sender: str
    args: list[str]
    in_management_room: bool
    team: Team | None = None
    """The team the command is about, when it declares ``team=``; set before the handler runs."""
    event_id: str | None = None
    """The command's event: replies reply to it."""
    thread_root: str | None = None
    """The thread the command was sent in, if any: replies go into it."""
    replies: int = field(default=0, init=False)
    """How many messages were sent; with ``event_id`` it makes each one's transaction id."""
    _room_team: Team | None = field(default=None, init=False, repr=False)
    _room_team_known: bool = field(default=False, init=False, repr=False)

    async def room_team(self) -> Team | None:
        """The team whose room the command was sent in (``None`` in the chat with the bot or a
        room of no team): looked up once per command, whoever asks (the place check, the team
        resolution, the handler)."""
        if not self._room_team_known:
            self._room_team = await self.ctx.teams.for_room(self.room_id)
            self._room_team_known = True
        return self._room_team

    @property
    def declared_team(self) -> Team:
        """``team`` in a handler declared with ``team=``, which runs only once it is found."""
        if self.team is None:
            raise RuntimeError("declared_team is for handlers declared with team=")
        return self.team

    @property
    def rest(self) -> str:
        return " ".join(self.args)

    async def reply(self, text: str | Message, *, listing: bool = False) -> None:
        """Send ``text`` (Markdown, see ``teams.formatting.prose``) as a formatted notice that
        replies to the command; the user IDs it names are pills, and its sender and (up to
        ``MAX_NOTIFIED``, none in a ``listing``) the users it names are in ``m.mentions``."""
        message = prose(text) if isinstance(text, str) else text
        notified = not listing and len(message.mentions) <= MAX_NOTIFIED
        mentions = list(message.mentions) if notified else []
        if self.event_id and self.sender not in mentions:
            mentions.append(self.sender)
        await self.ctx.homeserver.send_notice(
            self.room_id,
            message.plain,
            message.html,
            mentions=mentions,
            reply_to=self.event_id,
            thread_root=self.thread_root,
            txn_id=self.next_txn_id(),
        )

    async def reply_file(self, data: bytes, *, name: str, mime_type: str) -> None:
        """Send ``data`` as a file that replies to the command (in its thread), encrypted where
        the room is."""
        await self.ctx.homeserver.send_file(
            self.room_id,
            data,
            name=name,
            mime_type=mime_type,
            reply_to=self.event_id,
            thread_root=self.thread_root,
            txn_id=self.next_txn_id(),
        )

    def next_txn_id(self) -> str | None:
        """The transaction id of the next message this command sends (replies, files): the same
        on every run of the command, so a repeated run sends nothing twice."""
        self.replies += 1
        return reply_txn_id(self.event_id, self.replies - 1) if self.event_id else None


def reply_txn_id(event_id: str, number: int) -> str:
    """The transaction id of reply ``number`` to the event ``event_id``.

    A command that runs again (after a crash, from the inbox) sends its replies under the same
    ids, and the homeserver answers a repeated ``PUT /send/{txnId}`` with the event it already
    made, so the member sees each reply once.
    """
    digest = hashlib.sha256(event_id.encode()).hexdigest()[:32]
    return f"clutto.{digest}.{number}"


Handler = Callable[..., Awaitable[None]]
"""``handler(evt, **arguments)``: the event and the declared arguments as keywords."""
UsageNote = Callable[[CommandEvent], Awaitable[str]]


@dataclass(frozen=True)
class Arg:
    """One declared argument: ``NAME``, ``[NAME]`` (optional), ``NAME...`` (the rest of the line,
    shown as ``NAME``), ``on|off`` (one of these words) or ``[team]`` (optionally this word).

    The handler receives it as a keyword argument, as maubot's ``@command.argument(name, label)``
    does: named after the placeholder (``MXC_URL`` is ``mxc_url``, ``[team]`` is ``team``) or as
    the declaration says before a ``=`` (``enabled=on|off``; help shows ``on|off``). Its type
    follows from the declaration: ``on|off`` is a ``bool`` (on is true), an optional single word
    like ``[team]`` a ``bool`` (given or not), other words the chosen one in lower case, the rest
    of the line one string, anything else the word as sent. An optional argument that is not
    given is not passed, so the handler's default applies (a flag is ``False``)."""

    name: str
    optional: bool
    rest: bool
    keyword: str = ""

    @classmethod
    def parse(cls, token: str) -> Arg:
        optional = token.startswith("[") and token.endswith("]")
        name = token[1:-1] if optional else token
        rest = name.endswith("...")
        name = name.removesuffix("...")
        keyword, _, label = name.partition("=")
        if not label or not keyword.isidentifier():
            keyword, label = re.sub(r"\W+", "_", name.lower()).strip("_"), name
        return cls(label, optional, rest, keyword)

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self.name.split("|")) if _KEYWORDS.fullmatch(self.name) else ()

    @property
    def flag(self) -> bool:
        """An optional single word (``[team]``): given or not."""
        return self.optional and len(self.choices) == 1

    def value(self, word: str) -> str | bool:
        if self.flag:
            return True
        if self.choices == ("on", "off"):
            return word.lower() == "on"
        return word.lower() if self.choices else word

    def shown(self, *, example: bool = False) -> str:
        text = _EXAMPLES.get(self.name, self.name) if example else self.name
        return f"[{text}]" if self.optional else text


def parse_args(syntax: str) -> list[Arg]:
    args = [Arg.parse(token) for token in syntax.split()]
    for i, arg in enumerate(args):
        if arg.rest and i != len(args) - 1:
            raise ValueError(f"{syntax!r}: only the last argument can take the rest of the line")
        if not arg.optional and any(a.optional for a in args[:i]):
            raise ValueError(f"{syntax!r}: a required argument cannot follow an optional one")
    if len({a.keyword for a in args}) != len(args):
        raise ValueError(f"{syntax!r}: two arguments have the same name")
    return args


def check_handler(name: str, handler: Handler, args: list[Arg] | None) -> None:
    """The handler takes every declared argument as a keyword (with a default where it is
    optional), so a declaration and its handler cannot drift apart unnoticed."""
    parameters = inspect.signature(handler).parameters
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        return
    for arg in args or ():
        parameter = parameters.get(arg.keyword)
        if parameter is None or parameter.kind not in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            raise ValueError(f"{name!r}: the handler takes no keyword argument {arg.keyword!r}")
        if arg.optional and not arg.flag and parameter.default is parameter.empty:
            raise ValueError(f"{name!r}: the optional argument {arg.keyword!r} needs a default in the handler")


@dataclass
class Command:
    name: str
    func: Handler
    help_args: str
    help_text: str
    section: str
    args: list[Arg] | None = None
    """``None``: the command declares no arguments and, as always, ignores extra words."""
    team: TeamNeed = None
    private: bool = False
    private_refusal: str = PERSONAL
    usage_lead: str = "Usage"
    usage_note: UsageNote | None = None
    discloses: bool = False
    """Shows a team's or a person's data: never in a room that is not a team's or the chat."""
    example: str = ""
    """A whole command line as a user would send it (without the prefix), shown by ``help NAME``."""

    @property
    def min_args(self) -> int:
        return sum(1 for a in self.args or () if not a.optional)

    @property
    def max_args(self) -> int | None:
        if self.args is None or (self.args and self.args[-1].rest):
            return None
        return len(self.args)

    def keywords(self, words: list[str]) -> dict[str, str | bool]:
        """The declared arguments in ``words`` (which ``fits``), by name and typed (see ``Arg``)."""
        values: dict[str, str | bool] = {}
        for i, arg in enumerate(self.args or ()):
            if i < len(words):
                values[arg.keyword] = " ".join(words[i:]) if arg.rest else arg.value(words[i])
            elif arg.flag:
                values[arg.keyword] = False
        return values

    def usage_line(self, prefix: str) -> str:
        shown = " ".join(a.shown(example=True) for a in self.args or ())
        return f"{prefix} {self.name}" + (f" {shown}" if shown else "")

    def fits(self, args: list[str]) -> bool:
        """Whether ``args`` match the declared arguments: their count and the declared choices."""
        if self.args is None:
            return True
        count, most = len(args), self.max_args
        if count < self.min_args or (most is not None and count > most):
            return False
        return all(not arg.choices or value.lower() in arg.choices for arg, value in zip(self.args, args))

    async def handler(self, evt: CommandEvent) -> None:
        """Check what the command declares, in this order, then run it: arguments, place, team."""
        await self._check_args(evt)
        await self._check_place(evt)
        if self.team:
            evt.team = await team_here(evt, need=self.team)
            if self.team == "own" and evt.sender != evt.team.owner:
                raise NotAllowed(f"Only the owner of {evt.team.name} may use `{self.name}`.")
        await self.func(evt, **self.keywords(evt.args))

    async def _check_place(self, evt: CommandEvent) -> None:
        if evt.in_management_room or not (self.private or self.team or self.discloses):
            return
        in_team_room = await evt.room_team() is not None
        if self.private and (in_team_room or self.private_refusal != PERSONAL):
            raise NotAllowed(self.private_refusal)
        if in_team_room:
            return
        link = room_link(await evt.ctx.notices.direct_room(evt.sender))
        raise NotAllowed((PERSONAL_ELSEWHERE if self.private else TEAM_ELSEWHERE).format(link=link))

    async def _check_args(self, evt: CommandEvent) -> None:
        if self.fits(evt.args):
            return
        message = f"{self.usage_lead}: `{self.usage_line(evt.ctx.settings.bridge.command_prefix)}`."
        if self.usage_note:
            message += " " + await self.usage_note(evt)
        raise InvalidInput(message)


async def team_here(evt: CommandEvent, *, need: TeamNeed = "member") -> Team:
    """The team a command is about: the room's team; in the chat with the bot the team the user
    chose there with ``team use``, else their only team.

    In a team room the team's services decide who may do what (with their own wording), but
    for an owner's command (``need="own"``) the registry refuses anyone else; in a direct chat
    only the teams the user owns or manages count for such a command, unless the user chose a
    team, which then is the team.
    """
    teams = evt.ctx.teams
    team = await evt.room_team()
    if team:
        return team
    chosen = await current_team(evt)
    if chosen:
        return chosen
    roles = {"own": ("owner",), "manage": MANAGERS}.get(need or "")
    candidates = []
    for candidate in await teams.of_user(evt.sender):
        role = await teams.role_of(candidate, evt.sender)
        if role and (roles is None or role in roles):
            candidates.append(candidate)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        whose = {"own": "the owner of ", "manage": "an owner or admin of "}.get(need or "", "in ")
        raise NotAllowed(f"You are not {whose}any team.")
    names = ", ".join(t.name for t in candidates)
    raise InvalidInput(
        f"You are in several teams ({names}). Choose the one this chat is about with `team use NAME`, "
        "or send the command in a room of that team."
    )


async def current_team(evt: CommandEvent) -> Team | None:
    """The team chosen in this chat with the bot, while the user is still in it."""
    if not evt.in_management_room:
        return None
    team_id = await evt.ctx.notices.current_team(evt.room_id)
    if team_id is None:
        return None
    try:
        team = await evt.ctx.teams.get(team_id)
    except NotFound:
        team = None
    if team is None or await evt.ctx.teams.role_of(team, evt.sender) is None:
        await evt.ctx.notices.use_team(evt.room_id, None)  # left or removed: choose again
        return None
    return team


@dataclass
class Registry:
    commands: dict[str, Command] = field(default_factory=dict)

    def command(
        self,
        name: str,
        *,
        help_text: str,
        args: str | None = None,
        team: TeamNeed = None,
        private: bool = False,
        private_refusal: str = PERSONAL,
        usage_lead: str = "Usage",
        usage_note: UsageNote | None = None,
        section: str = "General",
        discloses: bool = False,
        example: str = "",
    ) -> Callable[[Handler], Handler]:
        """Register a handler.

        ``args`` is the syntax shown in help and checked before the handler runs; the handler
        gets each argument as a typed keyword (see ``Arg``);
        ``team="own"``, ``"manage"`` or ``"member"`` resolves the team here into ``evt.team``;
        ``"own"`` also refuses anyone but the team's owner before the handler runs;
        ``private`` refuses the command outside the chat with the bot;
        ``discloses`` (and ``team``) refuses it outside the team's rooms and the chat.
        ``example`` is a whole command line that ``help NAME`` shows (default: the name).
        """
        declared = parse_args(args) if args is not None else None
        help_args = " ".join(a.shown() for a in declared or ())

        def register(handler: Handler) -> Handler:
            check_handler(name, handler, declared)
            self.commands[name] = Command(
                name,
                handler,
                help_args,
                help_text,
                section,
                declared,
                team,
                private,
                private_refusal,
                usage_lead,
                usage_note,
                discloses,
                example or name,
            )
            return handler

        return register

    def find(self, words: list[str]) -> tuple[Command | None, list[str]]:
        """The command named by the first one, two or three words, and the remaining arguments."""
        lowered = [w.lower() for w in words]
        for length in (3, 2, 1):
            name = " ".join(lowered[:length])
            if len(words) >= length and name in self.commands:
                return self.commands[name], words[length:]
        return None, words


registry = Registry()


def _plain(text: str) -> str:
    return prose(text).plain


def _html(text: str) -> str:
    return prose(text).html
