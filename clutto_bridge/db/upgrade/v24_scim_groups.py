from mautrix.util.async_db import Connection

from clutto_bridge.db.upgrade import upgrade_table


@upgrade_table.register(index=23, description="SCIM groups that are rooms of the team's space, and their members")
async def upgrade_v24(conn: Connection) -> None:
    # A group the identity provider manages as a room (scim.room_groups, or made with POST /Groups).
    # The room itself is a team_room row; its name is the group's displayName.
    await conn.execute(
        """CREATE TABLE scim_group (
            id          TEXT PRIMARY KEY,
            team_id     TEXT NOT NULL REFERENCES team(id) ON DELETE CASCADE,
            room_id     TEXT NOT NULL,
            version     BIGINT NOT NULL,
            created_at  BIGINT NOT NULL,
            updated_at  BIGINT NOT NULL,
            UNIQUE (team_id, room_id)
        )"""
    )
    # The provisioned users the provider put in a group: invited to its room, kicked when taken out.
    await conn.execute(
        """CREATE TABLE scim_group_member (
            group_id  TEXT NOT NULL REFERENCES scim_group(id) ON DELETE CASCADE,
            user_id   TEXT NOT NULL REFERENCES scim_user(id) ON DELETE CASCADE,
            PRIMARY KEY (group_id, user_id)
        )"""
    )
