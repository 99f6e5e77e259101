"""Alembic migrations; shipped in the wheel as `neolith_orchestrator.migrations`."""
