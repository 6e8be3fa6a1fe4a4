"""The Clutto domain: teams, their rooms and members, roles, and what the policy asks of them."""
