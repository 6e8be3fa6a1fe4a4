"""How the bot's messages look: Markdown rendered to HTML with a plain body, user IDs as mentions."""

from clutto_bridge.domain.formatting import MATRIX_TO, document, prose


def test_prose_renders_marks_and_keeps_line_breaks() -> None:
    message = prose("**Acme** uses `!clutto help`\nline two")
    assert message.html == "<strong>Acme</strong> uses <code>!clutto help</code><br />\nline two"
    assert message.plain == "Acme uses `!clutto help`\nline two"
    assert prose("Send `accept`.", code_marks=False).plain == "Send accept."


def test_typed_names_cannot_become_markup_or_links() -> None:
    message = prose("Team <b>x</b> [click](https://evil.example) ![i](mxc://a/b)")
    assert "<b>" not in message.html and "<a " not in message.html and "<img" not in message.html
    assert "&lt;b&gt;" in message.html


def test_user_ids_outside_code_are_mentions_with_matrix_to_links() -> None:
    message = prose("Invited @bob:example.org. Try `invite @user:server`; mail ada@example.org:80.")
    assert message.mentions == ("@bob:example.org",)
    assert f'<a href="{MATRIX_TO}@bob:example.org">@bob:example.org</a>.' in message.html
    assert "<code>invite @user:server</code>" in message.html
    assert message.plain == "Invited @bob:example.org. Try `invite @user:server`; mail ada@example.org:80."
    assert prose("x@bob:example.org and (@ann:example.org)").mentions == ("@ann:example.org",)


def test_a_document_flows_wrapped_lines_into_paragraphs() -> None:
    text = "# Clutto privacy policy\n\nWe keep your\nprofile.\n\n## Rights\n- **Export:** send\n  `mydata`.\n- Revoke"
    message = document(text)
    assert message.html.startswith("<h1>Clutto privacy policy</h1>")
    assert "<p>We keep your profile.</p>" in message.html
    assert "<li><strong>Export:</strong> send <code>mydata</code>.</li>" in message.html
    assert "#" not in message.plain and "**" not in message.plain
    assert "We keep your profile." in message.plain
    assert "- Export: send `mydata`.\n- Revoke" in message.plain
    assert prose("1) one\n2) two\n* star").plain == "1) one\n2) two\n\n* star"


def test_messages_join_as_blocks() -> None:
    joined = prose("**Policy v1**") + document("Text\nwrapped.") + prose("Send `accept`.")
    assert joined.html == "<p><strong>Policy v1</strong></p>\n<p>Text wrapped.</p>\n<p>Send <code>accept</code>.</p>"
    assert joined.plain == "Policy v1\n\nText wrapped.\n\nSend `accept`."
