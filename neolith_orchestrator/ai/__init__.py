"""Replies: the generator protocol (`generator`), charters (`charter`), prompt building
(`prompt`, pure), the retry policy (`retry`), fair-use limits (`limits`), the Anthropic
adapter (`anthropic_provider`), the offline responder (`offline`) and the choice between
them at start-up (`factory`: `build_generator`, `describe_generator`).

Nothing is imported here, so using the protocol does not load the SDK."""
