"""The homeserver's refusals and failures, as the layers above ``matrix/`` may catch them
(they never import the Matrix library themselves)."""

from mautrix.errors import MatrixConnectionError, MatrixRequestError

from clutto_bridge.matrix.admin import AdminUnavailable, HomeserverTaskFailed
from clutto_bridge.matrix.crypto import UnreadableAttachment

__all__ = [
    "AdminUnavailable",
    "HomeserverTaskFailed",
    "MatrixConnectionError",
    "MatrixRequestError",
    "UnreadableAttachment",
]
