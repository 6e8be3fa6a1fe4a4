"""``GET /_clutto/v1/keys``: the public keys of our signatures, as a JWK set (RFC 7517).

Served without authentication: it is public key material, and a webhook receiver or an
auditor must be able to fetch it without holding any secret of ours.
"""

from __future__ import annotations

from aiohttp import web

from clutto_bridge.web import outputs as o
from clutto_bridge.web.endpoints import ApiContext, Endpoints
from clutto_bridge.web.routes import Reply, RouteTable


class KeysAPI(Endpoints):
    routes = RouteTable()

    def __init__(self, api: ApiContext) -> None:
        self.jwks = o.JsonWebKeySet.model_validate(api.keys.jwks())

    @routes.get(
        "/keys",
        "Public: the Ed25519 keys that verify our response and webhook signatures (JWK set)",
        responses={200: o.JsonWebKeySet},
        public=True,
    )
    async def keys(self, request: web.Request) -> Reply:
        """Match a signature's `keyid` with a key's `kid`. Earlier keys stay listed after a key change
        (`security.previous_signing_keys`), so what they signed still verifies."""
        return Reply(self.jwks, headers={"Cache-Control": "max-age=300"})
