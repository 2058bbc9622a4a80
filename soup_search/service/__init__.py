"""The soup-search service: an authenticated HTTP API that runs searches as Ray Jobs.

It sits above the search pipeline and never inside it: it stores searches, tokens and
audit rows in its own database (the source of truth), submits each search as a Ray Job
whose entrypoint is ``soup-search run``, reconciles its rows with Ray's (non-durable) job
records, and reads results back from the run folders. ``Tuner.fit`` never runs in it.
"""
