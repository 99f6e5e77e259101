"""Daemons: one `OrchestratorDaemon` per logged-in orchestrator, supervised by the singleton
`DaemonManager` (restart policy in `backoff`, sweeps in `sweeps`, storage in `store`)."""
