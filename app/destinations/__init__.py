"""Destinations: their configuration now, their connectors as they land."""
