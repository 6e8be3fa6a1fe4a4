"""Homeserver-facing code: the appservice, event dispatch and the builders of spaces and rooms."""
