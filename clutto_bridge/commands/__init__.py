"""Bot commands. Each module registers its handlers; importing them fills the registry.

The import order is the order of ``help``: teams first.
"""

# The order is that of help, so isort leaves it be.
# isort: off
from clutto_bridge.commands import (  # noqa: F401  (register handlers)
    team,
    export,
    help,
    integrations,
    members,
    people,
    preferences,
    portal,
    retention,
    rooms,
    scim,
)

# isort: on
from clutto_bridge.commands.registry import CommandEvent, registry

__all__ = ["CommandEvent", "registry"]
