from clutto_bridge.commands import registry
from clutto_bridge.commands.registry import _html, _plain


def test_commands_are_found_by_one_or_two_words() -> None:
    command, args = registry.find(["team", "create", "Acme", "Corp"])
    assert command.name == "team create" and args == ["Acme", "Corp"]
    command, args = registry.find(["INVITE", "@a:b", "admin"])
    assert command.name == "invite" and args == ["@a:b", "admin"]
    assert registry.find(["team"])[0] is None
    assert registry.find([])[0] is None


def test_every_command_has_help() -> None:
    # The bot commands DESIGN promises (section 3).
    promised = {"help", "team create", "team info", "invite", "remove", "role", "transfer", "retention show",
                "retention set", "retention preview", "hold", "export", "profile show", "profile set", "accept",
                "marketing", "contacts allow", "contacts revoke"}
    assert promised <= set(registry.commands), promised - set(registry.commands)
    assert all(c.help_text for c in registry.commands.values())


def test_replies_are_escaped_html_with_plain_body() -> None:
    text = "**Acme <script>** uses `!clutto help`\nline two"
    assert _plain(text) == "Acme <script> uses `!clutto help`\nline two"
    assert _html(text) == "<strong>Acme &lt;script&gt;</strong> uses <code>!clutto help</code><br/>line two"
