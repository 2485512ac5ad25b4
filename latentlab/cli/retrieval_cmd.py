"""CLI commands for the retrieval part of latentlab (registered on import)."""
