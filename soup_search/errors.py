"""The one root exception of soup-search.

Every user-facing error is a :class:`SoupSearchError` whose message is one line
that names the problem and the fix. The CLI turns it into exit code 2 with no
traceback.
"""

from __future__ import annotations


class SoupSearchError(Exception):
    """Root of all errors raised on bad input. The message is shown to the user as is."""


class ConfigError(SoupSearchError):
    """A config (YAML or CLI options) has one or more problems; all are reported together."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{source}: {n} problem{'s' if n != 1 else ''}"
        super().__init__(head + ": " + "; ".join(self.problems))


class CandidateError(SoupSearchError):
    """A candidate checkpoint is missing, unreadable or incompatible with the others."""


class MergeError(SoupSearchError):
    """A merge recipe cannot be carried out (bad weights, unknown method, NaN input, ...)."""


class ObjectiveError(SoupSearchError):
    """An objective or its data is misconfigured, or a split was used where it must not be."""


class ZooError(SoupSearchError):
    """The toy zoo cannot be built as asked (unknown size, bad output dir)."""


class ClusterError(SoupSearchError):
    """The Ray cluster cannot hold the run's actors (too few resources, nodes lost)."""


class SearchError(SoupSearchError):
    """A search stage's trials failed (after Tune's retries), so its result would be partial."""


class AnalysisError(SoupSearchError):
    """A score table cannot be analysed (too few models, constant column, unknown names, ...)."""
