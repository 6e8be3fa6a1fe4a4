"""The Clutto domain: teams, their rooms and members, roles."""
