"""Chat: mention parsing (`mentions`, pure), channels and messages (`service`), mention jobs
(`jobs`), and the message flow that commits, pushes and wakes daemons (`messenger`)."""
