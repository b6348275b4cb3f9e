"""Exports and small shipped weights, each folder with a ``metadata.json``."""
