"""The OpenAPI document of the provisioning API: what exists, nothing more."""

from __future__ import annotations

from typing import Any

from clutto_bridge import __version__


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(schema_ref: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}}


_TEAM_ID = {"name": "team_id", "in": "path", "required": True, "schema": {"type": "string"}}
_USER_ID = {"name": "user_id", "in": "path", "required": True, "schema": {"type": "string"}}
_COMMON = {"401": _error("Missing or wrong bearer token")}


def openapi_document(prefix: str) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "clutto-bridge provisioning API",
            "version": __version__,
            "description": "Operators authenticate with the provisioning secret as a bearer token. "
            "Members and Customers use a Matrix OpenID token from their homeserver "
            "(POST /_matrix/client/v3/user/{userId}/openid/request_token) as the bearer token and may act "
            "only on their own teams, with the rights of their role. "
            "Errors are Matrix-style objects with errcode and error.",
        },
        "servers": [{"url": prefix}],
        "security": [{"bearer": []}],
        "paths": {
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI document"}, **_COMMON}}},
            "/notices": {
                "post": {
                    "summary": "Operator: send a service notice (reaches every member) or marketing (only members who opted in)",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["kind", "text"],
                        "properties": {"kind": {"type": "string", "enum": ["service", "marketing"]}, "text": {"type": "string"},
                                       "team_id": {"type": "string", "description": "one team; all teams when absent"}}}}}},
                    "responses": {"200": {"description": "Counts: delivered, skipped_opted_out"},
                                  "400": _error("Bad kind or text"), "403": _error("Not the operator"),
                                  "404": _error("Unknown team"), **_COMMON},
                }
            },
            "/teams": {
                "get": {
                    "summary": "List teams",
                    "responses": {"200": _json("TeamList", "All teams"), **_COMMON},
                },
                "post": {
                    "summary": "Create a team (space and default rooms) owned by a local user",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewTeam"}}}},
                    "responses": {
                        "201": _json("Team", "The team, ready"),
                        "400": _error("Bad JSON or invalid name/owner"),
                        "403": _error("Owner is not on this homeserver"),
                        "404": _error("Owner does not exist"),
                        "409": _error("A team with this name exists (errcode IO.CLUTTO.TEAM_EXISTS)"),
                        **_COMMON,
                    },
                },
            },
            "/teams/{team_id}": {
                "get": {
                    "summary": "One team with its rooms and members",
                    "parameters": [_TEAM_ID],
                    "responses": {"200": _json("Team", "The team"), "404": _error("Unknown team"), **_COMMON},
                },
                "patch": {
                    "summary": "Change the team's name, topic or avatar (mxc:// URL)",
                    "parameters": [_TEAM_ID],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "properties": {"name": {"type": "string"}, "topic": {"type": "string"},
                                                         "avatar_url": {"type": "string"}}}}}},
                    "responses": {"200": _json("Team", "Changed"), "400": _error("Bad value"), "404": _error("Unknown team"),
                                  "409": _error("Name taken"), **_COMMON},
                },
                "delete": {
                    "summary": "Delete the team: space and rooms deleted with purge on the homeserver, rows removed",
                    "parameters": [_TEAM_ID],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["confirm"],
                        "properties": {"confirm": {"type": "string", "description": "the team's name"}}}}}},
                    "responses": {"200": {"description": "Deleted"}, "400": _error("Missing or wrong confirmation"),
                                  "403": _error("No admin API"), "404": _error("Unknown team"), **_COMMON},
                },
            },
            "/teams/{team_id}/members/{user_id}": {
                "put": {
                    "summary": "Change a member's role (power levels follow in every team room)",
                    "parameters": [_TEAM_ID, _USER_ID],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["role"], "properties": {"role": {"type": "string", "enum": ["admin", "member", "guest"]}}}}}},
                    "responses": {"200": _json("Member", "Changed"), "400": _error("Bad role"), "403": _error("Owner's role"),
                                  "404": _error("Unknown team or member"), "409": _error("Already that role"), **_COMMON},
                },
                "delete": {
                    "summary": "Remove a member: kicked from the space, rooms and individual chats",
                    "parameters": [_TEAM_ID, _USER_ID, {"name": "deactivate", "in": "query", "schema": {"type": "boolean", "default": False},
                                                        "description": "also deactivate an account Clutto created"}],
                    "responses": {"200": _json("Member", "Removed"), "403": _error("Owner, or account not deactivatable"),
                                  "404": _error("Unknown team or member"), **_COMMON},
                },
            },
            "/teams/{team_id}/transfer": {
                "post": {
                    "summary": "Transfer ownership to another member; the old owner becomes admin",
                    "parameters": [_TEAM_ID],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["user_id"], "properties": {"user_id": {"type": "string"}}}}}},
                    "responses": {"200": _json("Team", "Transferred"), "400": _error("Transfer to the owner"),
                                  "404": _error("Not a member"), **_COMMON},
                }
            },
            "/teams/{team_id}/rooms": {
                "post": {
                    "summary": "Create a group room in the team's space",
                    "parameters": [_TEAM_ID],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}},
                    "responses": {"201": _json("Room", "Created"), "400": _error("Bad name"), "404": _error("Unknown team"),
                                  "409": _error("Name taken"), **_COMMON},
                }
            },
            "/teams/{team_id}/rooms/{room}": {
                "delete": {
                    "summary": "Archive a group room (by id or name): read-only and out of the space",
                    "parameters": [_TEAM_ID, {"name": "room", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": _json("Room", "Archived"), "404": _error("Unknown team or room"), **_COMMON},
                }
            },
            "/teams/{team_id}/direct": {
                "post": {
                    "summary": "Create (or return) the direct chat between two members of the team",
                    "parameters": [_TEAM_ID],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["user_ids"],
                        "properties": {"user_ids": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}}}}}},
                    "responses": {"201": _json("Room", "Created"), "200": _json("Room", "Existing"),
                                  "403": _error("Not both members"), "404": _error("Unknown team"), **_COMMON},
                }
            },
            "/teams/{team_id}/integrations": {
                "get": {
                    "summary": "The team's allowlist of integration bots and widget URL prefixes (and the operator's defaults)",
                    "parameters": [_TEAM_ID],
                    "responses": {"200": _json("Integrations", "Allowlist"), "404": _error("Unknown team"), **_COMMON},
                },
                "post": {
                    "summary": "Allow a bot (Matrix ID) or widgets under an https:// URL prefix",
                    "parameters": [_TEAM_ID],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["value"], "properties": {"value": {"type": "string"}}}}}},
                    "responses": {"201": _json("Integrations", "Allowed"), "400": _error("Neither bot nor prefix"),
                                  "404": _error("Unknown team"), "409": _error("Already allowed"), **_COMMON},
                },
                "delete": {
                    "summary": "Deny a bot or prefix again; a denied bot is removed from the team's rooms",
                    "parameters": [_TEAM_ID, {"name": "value", "in": "query", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": _json("Integrations", "Denied"), "400": _error("Missing value"),
                                  "404": _error("Unknown team or not on the list"), **_COMMON},
                },
            },
            "/teams/{team_id}/retention": {
                "get": {
                    "summary": "The team's message lifetime, cutoff, bounds, holds and recent sweeps",
                    "parameters": [_TEAM_ID],
                    "responses": {"200": {"description": "Retention"}, "404": _error("Unknown team"), **_COMMON},
                },
                "put": {
                    "summary": "Set the team's maximum message lifetime within the operator's bounds",
                    "parameters": [_TEAM_ID],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["max_lifetime"],
                        "properties": {"max_lifetime": {"type": "string", "example": "30d"}}}}}},
                    "responses": {"200": {"description": "Set"}, "400": _error("Bad duration or out of bounds"),
                                  "403": _error("Not owner/admin"), "404": _error("Unknown team"), **_COMMON},
                },
            },
            "/teams/{team_id}/retention/preview": {
                "post": {
                    "summary": "Count what a sweep would remove now, per room; removes nothing",
                    "parameters": [_TEAM_ID],
                    "responses": {"200": {"description": "Counts"}, "404": _error("Unknown team"), **_COMMON},
                }
            },
            "/teams/{team_id}/retention/sweep": {
                "post": {
                    "summary": "Queue a sweep now (or return the one already queued)",
                    "parameters": [_TEAM_ID],
                    "responses": {"202": _json("Job", "Queued"), "404": _error("Unknown team"), **_COMMON},
                }
            },
            "/teams/{team_id}/jobs/{job_id}": {
                "get": {
                    "summary": "A job of the team with its progress",
                    "parameters": [_TEAM_ID, {"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                    "responses": {"200": _json("Job", "The job"), "404": _error("Unknown team or job"), **_COMMON},
                }
            },
            "/teams/{team_id}/plan": {
                "put": {
                    "summary": "Set the team's plan (operator only): trial teams are purged after trial and grace",
                    "parameters": [_TEAM_ID],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["plan"], "properties": {"plan": {"type": "string", "enum": ["trial", "paid"]}}}}}},
                    "responses": {"200": _json("Team", "Set"), "400": _error("Unknown plan"), "403": _error("Not the operator"),
                                  "404": _error("Unknown team"), **_COMMON},
                }
            },
            "/teams/{team_id}/export-setting": {
                "put": {
                    "summary": "Whether the team is exported before a destructive purge",
                    "parameters": [_TEAM_ID],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["before_purge"], "properties": {"before_purge": {"type": "boolean"}}}}}},
                    "responses": {"200": {"description": "Set"}, "403": _error("Not owner/admin"), "404": _error("Unknown team"), **_COMMON},
                }
            },
            "/teams/{team_id}/exports": {
                "post": {
                    "summary": "Start an export (messages as JSON lines per room, media, members, manifest with SHA-256)",
                    "parameters": [_TEAM_ID],
                    "responses": {"202": _json("Job", "Queued; poll /teams/{team_id}/jobs/{job_id}"), "404": _error("Unknown team"), **_COMMON},
                }
            },
            "/teams/{team_id}/exports/{job_id}/{path}": {
                "get": {
                    "summary": "Download one file of a finished export (manifest.json lists them)",
                    "parameters": [_TEAM_ID, {"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}},
                                   {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "The file"}, "404": _error("Unknown export or file"), **_COMMON},
                }
            },
            "/teams/{team_id}/hold": {
                "put": {
                    "summary": "Place a legal hold on the team (no room_id) or one of its rooms",
                    "parameters": [_TEAM_ID],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "properties": {"room_id": {"type": "string"}, "reason": {"type": "string"}}}}}},
                    "responses": {"201": {"description": "Placed"}, "400": _error("Room of another team"),
                                  "403": _error("Not the owner"), "409": _error("Already held"), **_COMMON},
                },
                "delete": {
                    "summary": "Lift a legal hold (room_id query parameter for a room's hold)",
                    "parameters": [_TEAM_ID, {"name": "room_id", "in": "query", "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "Lifted"}, "404": _error("No such hold"), **_COMMON},
                },
            },
            "/teams/{team_id}/members": {
                "post": {
                    "summary": "Add a member: invite an existing account (user_id) or create one (username, email, password)",
                    "parameters": [_TEAM_ID],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewMember"}}}},
                    "responses": {
                        "201": _json("Member", "Invited"),
                        "400": _error("Bad JSON, user ID, role, email or password"),
                        "403": _error("Account creation without the admin API"),
                        "404": _error("Unknown team or user"),
                        "409": _error("Already a member, or the account exists"),
                        **_COMMON,
                    },
                }
            },
            **_people_paths(),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["errcode", "error"],
                    "properties": {"errcode": {"type": "string"}, "error": {"type": "string"}},
                },
                "NewTeam": {
                    "type": "object",
                    "required": ["name", "owner"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "owner": {"type": "string", "description": "Matrix user ID of the Customer"},
                    },
                },
                "NewMember": {
                    "type": "object",
                    "description": "Either user_id (existing account) or username, email and password (new account).",
                    "properties": {
                        "user_id": {"type": "string"},
                        "username": {"type": "string"},
                        "email": {"type": "string"},
                        "password": {"type": "string", "minLength": 8, "description": "initial password; never stored"},
                        "role": {"type": "string", "enum": ["admin", "member", "guest"], "default": "member"},
                    },
                },
                "Member": {
                    "type": "object",
                    "properties": {
                        "user_id": {"type": "string"},
                        "role": {"type": "string", "enum": ["owner", "admin", "member", "guest"]},
                        "membership": {"type": "string", "enum": ["invited", "joined", "declined", "left", "removed"]},
                    },
                },
                "Room": {
                    "type": "object",
                    "properties": {"room_id": {"type": "string"}, "name": {"type": "string"},
                                   "kind": {"type": "string", "enum": ["group", "direct"]}, "archived": {"type": "boolean"}},
                },
                "Team": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "name": {"type": "string"},
                        "owner": {"type": "string"},
                        "space_id": {"type": "string"},
                        "state": {"type": "string", "enum": ["creating", "active", "deleting"]},
                        "plan": {"type": "string", "enum": ["trial", "paid"]},
                        "created_at": {"type": "integer", "description": "ms since the epoch"},
                        "trial_ends_at": {"type": "integer"},
                        "purge_after": {"type": "integer"},
                        "rooms": {"type": "array", "items": {"$ref": "#/components/schemas/Room"}},
                        "members": {"type": "array", "items": {"$ref": "#/components/schemas/Member"}},
                    },
                },
                "Integrations": {
                    "type": "object",
                    "properties": {
                        "bots": {"type": "array", "items": {"type": "string"}},
                        "widget_url_prefixes": {"type": "array", "items": {"type": "string"}},
                        "defaults": {"type": "object", "description": "the operator's lists, allowed in every team"},
                    },
                },
                "Job": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"}, "kind": {"type": "string"}, "team_id": {"type": "string"},
                        "state": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
                        "progress": {"type": "object"}, "attempts": {"type": "integer"}, "error": {"type": "string", "nullable": True},
                    },
                },
                "TeamList": {
                    "type": "object",
                    "properties": {"teams": {"type": "array", "items": {"$ref": "#/components/schemas/Team"}}},
                },
            },
        },
    }


def _body(schema: dict[str, Any], kind: str = "application/json") -> dict[str, Any]:
    return {"required": True, "content": {kind: {"schema": schema}}}


def _people_paths() -> dict[str, Any]:
    """A person's own things: members act on themselves; the operator reads and corrects profiles."""
    user = [_USER_ID]
    self_only = _error("Not this member (the operator cannot act for a member here)")
    return {
        "/policy": {"get": {
            "summary": "The current privacy policy: version, summary, full text, consent mode, all versions",
            "responses": {"200": {"description": "The policy"}, **_COMMON}}},
        "/teams/{team_id}/consent": {"get": {
            "summary": "Owner, admins, operator: who in the team accepted the current policy, and who block mode holds back",
            "parameters": [_TEAM_ID],
            "responses": {"200": {"description": "version, mode, members with consented, last_accepted, blocked"},
                          "403": _error("Not the owner or an admin"), "404": _error("Unknown team"), **_COMMON}}},
        "/users/{user_id}/profile": {
            "get": {"summary": "A profile (yourself, a teammate, or any for the operator)", "parameters": user,
                    "responses": {"200": {"description": "Allowed fields and the required ones missing"},
                                  "403": _error("Not in a team with this user"), **_COMMON}},
            "put": {"summary": "Set fields (a value) or remove optional ones (null): first_name, last_name, "
                               "designation, photo (mxc:// URI of an allowed image)",
                    "parameters": user,
                    "requestBody": _body({"type": "object", "additionalProperties": {"type": "string", "nullable": True}}),
                    "responses": {"200": {"description": "The profile after the change"},
                                  "400": _error("Unknown or disallowed field, bad value, photo of wrong type or too large"),
                                  "403": _error("Not this member"), **_COMMON}},
        },
        "/users/{user_id}/consent": {
            "get": {"summary": "Consent records and whether they cover the current version", "parameters": user,
                    "responses": {"200": {"description": "Consent"}, "403": _error("Not this member"), **_COMMON}},
            "post": {"summary": "Accept the current policy version (restores sending in block mode)", "parameters": user,
                     "requestBody": _body({"type": "object", "required": ["version"], "properties": {"version": {"type": "string"}}}),
                     "responses": {"200": {"description": "Consent after accepting"},
                                   "400": _error("Unknown or not the current version"), "403": self_only,
                                   "409": _error("Already accepted"), **_COMMON}},
        },
        "/users/{user_id}/contacts/permission": {
            "put": {"summary": "Allow contact import", "parameters": user,
                    "responses": {"200": {"description": "Allowed"}, "403": self_only, "409": _error("Already allowed"), **_COMMON}},
            "delete": {"summary": "Revoke contact import; deletes every imported contact", "parameters": user,
                       "responses": {"200": {"description": "Revoked, with the number deleted"}, "403": self_only,
                                     "409": _error("Not allowed, nothing to revoke"), **_COMMON}},
        },
        "/users/{user_id}/contacts": {
            "get": {"summary": "Imported contacts", "parameters": user,
                    "responses": {"200": {"description": "Contacts"}, "403": self_only, **_COMMON}},
            "post": {"summary": "Import a vCard file (body, Content-Type text/vcard); matches are offered as invites",
                     "parameters": user, "requestBody": _body({"type": "string"}, "text/vcard"),
                     "responses": {"201": {"description": "Counts: imported, matched user IDs"},
                                   "400": _error("Malformed vCard"), "403": _error("No permission, or not this member"),
                                   "413": _error("Over 1 MiB"), "415": _error("Not text/vcard"), **_COMMON}},
        },
        "/users/{user_id}/data": {"get": {
            "summary": "Everything the bridge stores about a user (their own, or any for the operator), as JSON",
            "parameters": user, "responses": {"200": {"description": "The data"}, "403": _error("Not this member"), **_COMMON}}},
    }

