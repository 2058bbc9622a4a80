"""The Ray edge: cluster start and sizing, shard actors, scorer actors, the run store, the session.

The only package (with search/ and cli/) that imports ray at module top."""
