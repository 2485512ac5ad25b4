"""CLI commands for the align part of latentlab (registered on import)."""
