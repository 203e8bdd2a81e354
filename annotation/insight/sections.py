"""The dashboard's sections, each a function of arrays (and a few SQL aggregates) -> tables.

A table is ``{"title", "columns", "rows"}`` (rows are lists of plain JSON values) so that one
code path renders it as HTML, serves it as JSON and downloads it as CSV.

Treatment of ties and both-bad (documented in docs/insight.md):
- pairwise agreement (nominal): four categories, first wins / second wins / tie / both bad;
- pairwise strength (ordinal): the signed 9-point scale of :mod:`annotation.insight.arrays`;
  both-bad is missing there (it says nothing about which response is better);
- position and length bias: only A/B choices count (a tie or both-bad prefers no side);
- leaderboard: a tie is half a win for each system; both-bad is left out.
"""

from __future__ import annotations

from annotation.insight.activity import (
    judgment_hours,
    queue_done_by_day,
    queue_facts,
    recent_activity,
    throughput_section,
)
from annotation.insight.leaderboard import bias_section, leaderboard_section, runs_section
from annotation.insight.quality import (
    agreement_section,
    rater_db_facts,
    rater_facts,
    rater_section,
)
from annotation.insight.tables import table

__all__ = [
    "agreement_section",
    "bias_section",
    "judgment_hours",
    "leaderboard_section",
    "queue_done_by_day",
    "queue_facts",
    "rater_db_facts",
    "rater_facts",
    "rater_section",
    "recent_activity",
    "runs_section",
    "table",
    "throughput_section",
]
