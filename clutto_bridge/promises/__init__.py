"""The privacy policy as a checked map: the registry of promises, the compliance report for a
configuration, and the generated page ``docs/promises.md``."""

from clutto_bridge.promises.compliance import Finding, State, Verdict, check, weakened
from clutto_bridge.promises.registry import BY_ID, PROMISES, Built, Pending, Promise, Weakening

__all__ = [
    "BY_ID",
    "PROMISES",
    "Built",
    "Finding",
    "Pending",
    "Promise",
    "State",
    "Verdict",
    "Weakening",
    "check",
    "weakened",
]
