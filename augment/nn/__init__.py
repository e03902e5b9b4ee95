"""Shared network building blocks used by the plugins."""
