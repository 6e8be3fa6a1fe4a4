"""Bot commands. Each module registers its handlers; importing them fills the registry."""

from clutto_bridge.commands import export, help, integrations, members, preferences, retention, rooms, team  # noqa: F401  (register handlers)
from clutto_bridge.commands.registry import CommandEvent, registry

__all__ = ["CommandEvent", "registry"]
