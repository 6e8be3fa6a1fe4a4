import json

from mautrix.util.async_db import Connection

from clutto_bridge.db.upgrade import upgrade_table


@upgrade_table.register(index=22, description="Exports are numbered per team from 1")
async def upgrade_v23(conn: Connection) -> None:
    # How many exports each team has had: the next one gets the next number (its job's payload
    # keeps it, as ``number``). Job ids are shared by every team and every kind of job, so they
    # made poor export numbers ("Export #2" of a team's first export).
    await conn.execute("ALTER TABLE team ADD COLUMN exports_made BIGINT NOT NULL DEFAULT 0")
    # The exports made so far are numbered in the order they were asked for.
    made: dict[str, int] = {}
    for row in await conn.fetch("SELECT id, team_id, payload FROM job WHERE kind='export' ORDER BY id"):
        made[row["team_id"]] = made.get(row["team_id"], 0) + 1
        payload = {**json.loads(row["payload"]), "number": made[row["team_id"]]}
        await conn.execute("UPDATE job SET payload=$1 WHERE id=$2", json.dumps(payload), row["id"])
    for team_id, count in made.items():
        await conn.execute("UPDATE team SET exports_made=$1 WHERE id=$2", count, team_id)
