"""Benchmarks of the hot paths (``soup-search bench ...``)."""
