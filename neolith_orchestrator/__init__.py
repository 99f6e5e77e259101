"""neolith-orchestrator: AI colleagues for team chat."""
