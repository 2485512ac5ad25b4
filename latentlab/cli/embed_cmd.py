"""CLI commands for the embed part of latentlab (registered on import)."""
