"""Pure policy decisions: facts in, decision out; no I/O, no clock reads."""
