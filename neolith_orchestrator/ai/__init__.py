"""Replies: the generator protocol (`generator`), charters (`charter`), prompt building
(`prompt`, pure), the retry policy and attempt loop (`retry`), fair-use limits (`limits`),
the Anthropic and OpenAI-compatible adapters (`anthropic_provider`, `openai_provider`), the
offline responder (`offline`), which provider answers a charter (`providers`, pure), the
router that picks one per reply (`router`) and the choice at start-up (`factory`:
`build_generator`, `describe_generator`).

Nothing is imported here, so using the protocol does not load an SDK."""
