"""Organizations, users and orchestrators (the directory every other domain reads)."""
