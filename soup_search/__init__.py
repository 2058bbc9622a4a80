"""soup-search: find the best model soup for a categorised benchmark (SoCE), distributed on Ray."""

from soup_search.errors import (
    AnalysisError,
    CandidateError,
    ConfigError,
    MergeError,
    ObjectiveError,
    SoupSearchError,
    ZooError,
)

__version__ = "0.1.0"

__all__ = [
    "AnalysisError",
    "CandidateError",
    "ConfigError",
    "MergeError",
    "ObjectiveError",
    "SoupSearchError",
    "ZooError",
    "__version__",
]
