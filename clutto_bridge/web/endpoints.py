"""What the provisioning API's endpoint groups are, and what each is built from.

The API is split by feature as ``commands/`` is (``web/teams.py``, ``web/members.py``,
``web/retention.py`` …; anchor: Synapse's ``rest/admin/rooms.py`` and ``users.py``). Each
group declares its endpoints in its own ``RouteTable``; ``web/provisioning.py`` lists the
groups once, and that list builds the router, the OpenAPI document and the metrics' routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from clutto_bridge.context import Services
from clutto_bridge.crypto.http_signatures import SigningKeys
from clutto_bridge.web.routes import RouteTable
from clutto_bridge.web.team_access import TeamAccess


@dataclass(frozen=True)
class ApiContext:
    """What every group is built from; each takes the services it calls."""

    services: Services
    team: TeamAccess
    """The team (and job) the path names, if the requester may reach it."""
    keys: SigningKeys


class Endpoints:
    """A group of endpoints: a route table declared beside its handlers."""

    routes: ClassVar[RouteTable]

    def __init__(self, api: ApiContext) -> None:
        raise NotImplementedError
