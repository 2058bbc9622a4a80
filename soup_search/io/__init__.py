"""Byte-level I/O: safetensors reading and writing, atomic output, cache paths. No Ray."""
