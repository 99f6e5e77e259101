"""Replies: the generator protocol (`generator`), charters (`charter`), prompt building
(`prompt`, pure), the Anthropic adapter and the offline responder."""
