"""Thin DVC stage modules: read their params.yaml keys, call `augment`, write outputs."""
