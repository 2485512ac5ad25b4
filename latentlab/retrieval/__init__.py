"""Cross-modal retrieval: rank metrics and post-hoc fixes."""
