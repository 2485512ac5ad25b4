"""Stitching maps between embedding spaces (fit / transform / save / load)."""
