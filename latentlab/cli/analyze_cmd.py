"""CLI commands for the analyze part of latentlab (registered on import)."""
