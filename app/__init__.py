"""Signalsmith: audience activation service."""
