"""Metrics of the geometry of embedding spaces: one module per idea."""
