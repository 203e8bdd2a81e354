"""Pure statistics on numpy arrays: agreement, proportions, bootstrap, Bradley-Terry.

Nothing here touches the database; :mod:`annotation.insight` turns judgments into arrays and
calls these functions. Point estimates come from well-kept libraries (``krippendorff``,
``statsmodels``, ``scipy``); the bootstrap uses weighted sufficient statistics so that a
resample costs one matrix product instead of a library call (tests check both agree).
"""

from __future__ import annotations

import importlib
import time

# The libraries the statistics import where used (not at module import, to keep them out of
# the web process): together about a second of import time (scipy.stats alone most of it).
LIBRARIES = (
    "scipy.stats",
    "statsmodels.stats.inter_rater",
    "statsmodels.stats.proportion",
    "krippendorff",
)


def preload() -> float:
    """Import :data:`LIBRARIES` now and return the seconds it took (0 when already loaded).

    For a process whose job is computing dashboards (the ``cpu`` worker, at start): its first
    dashboard then does not pay the imports. The web process never calls this."""
    started = time.perf_counter()
    for name in LIBRARIES:
        importlib.import_module(name)
    return time.perf_counter() - started
