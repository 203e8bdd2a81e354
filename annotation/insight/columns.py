"""Human names and explanations for the dashboard tables' columns.

The tables keep their machine column names (the JSON API and the CSV files use them, and
scripts read them); the pages show the name here, with the explanation as a tooltip. A column
of one table can mean something else in another (``low``), so a table's own entries come first.
"""

from __future__ import annotations

from typing import Any

from training.contract.trainers import POLICY_TRAINERS

Column = tuple[str, str]  # (shown name, explanation)

ALPHA = "\u03b1"  # Greek alpha (ruff takes the letter for a Latin "a")
INTERVAL = "bound of the 95% bootstrap interval over items"
COMMON: dict[str, Column] = {
    "day": ("Day", "Calendar day, UTC"),
    "hour": ("Hour", "Start of the clock hour, UTC"),
    "time": ("From", "Start of the 5 minutes, UTC"),
    "judgments": ("Judgments", "First submissions (revisions are not counted again)"),
    "active_raters": ("Active raters", "Raters with at least one judgment in the period"),
    "rater": ("Rater", "Username"),
    "rater_id": ("Id", "The rater's user id"),
    "items": ("Items", "Items (tasks, or task responses) rated by at least two raters"),
    "low": ("Low", "Lower bound of the 95% interval"),
    "high": ("High", "Upper bound of the 95% interval"),
    "n": ("n", "How many choices the share is computed on"),
    "system": ("System", "Model version name, or the source of imported responses"),
}

COLUMNS: dict[str, dict[str, Column]] = {
    "agreement": {
        "kind": ("Task kind", "pairwise, ranking or rating"),
        "measure": ("Compared", "What raters are compared on"),
        "level": ("Scale", "nominal: categories; ordinal: ordered values"),
        "percent": ("% agree", "Share of agreeing rater pairs among all pairs on the same item"),
        "percent_low": ("% low", f"Percent agreement: lower {INTERVAL}"),
        "percent_high": ("% high", f"Percent agreement: upper {INTERVAL}"),
        "items": ("Items", "Items with at least two ratings"),
        "fleiss_kappa": (
            "Fleiss' κ",
            "Fleiss' kappa, on the items rated by the most common number of raters: "
            "0 = chance agreement, 1 = perfect",
        ),
        "fleiss_low": ("κ low", f"Fleiss' kappa: lower {INTERVAL}"),
        "fleiss_high": ("κ high", f"Fleiss' kappa: upper {INTERVAL}"),
        "krippendorff_alpha": (
            f"Krippendorff's {ALPHA}",
            "Krippendorff's alpha over every item with two or more ratings: "
            "0 = chance agreement, 1 = perfect",
        ),
        "alpha_low": (f"{ALPHA} low", f"Krippendorff's alpha: lower {INTERVAL}"),
        "alpha_high": (f"{ALPHA} high", f"Krippendorff's alpha: upper {INTERVAL}"),
    },
    "kendall": {
        "mean_tau": (
            "Mean τ-b",
            "Kendall's tau-b between two raters' rankings of a task, averaged per task, then "
            "over tasks: 0 = unrelated, 1 = the same order",
        ),
        "low": ("Low", "Lower bound of the 95% bootstrap interval over tasks"),
        "high": ("High", "Upper bound of the 95% bootstrap interval over tasks"),
        "tasks": ("Tasks", "Ranking tasks with at least two raters"),
        "rater_pairs": ("Rater pairs", "Pairs of raters compared, over all tasks"),
    },
    "cohen_pairs": {
        "rater_a": ("Rater A", "Username"),
        "rater_b": ("Rater B", "Username"),
        "shared_items": ("Shared items", "Pairwise tasks both raters judged"),
        "kappa": ("Cohen's κ", "Cohen's kappa of the two raters: 0 = chance, 1 = perfect"),
        "low": ("Low", "Lower bound of the large-sample 95% interval"),
        "high": ("High", "Upper bound of the large-sample 95% interval"),
    },
    "raters": {
        "judgments": ("Judgments", "Current judgments (one per task)"),
        "loo_majority_agreement": (
            "Agrees with others",
            "Share of the rater's pairwise choices equal to the unique majority of the other "
            "raters of the task (at least two others)",
        ),
        "loo_items": ("Items", "Tasks where the other raters had a unique majority"),
        "gold_accuracy": ("Gold accuracy", "Share of gold tasks answered as the gold answer says"),
        "gold_items": ("Gold", "Gold tasks answered"),
        "judgments_per_hour": (
            "Per active hour",
            "First submissions divided by the clock hours in which the rater submitted",
        ),
        "median_seconds": ("Median s", "Median time spent on a task, seconds"),
        "too_fast_share": ("Too fast", "Share of judgments made in under 4 seconds"),
        "skip_rate": (
            "Skip rate",
            "Skipped leases among finished ones (submitted, skipped, expired)",
        ),
        "expired_leases": ("Expired", "Leases that ran out before an answer"),
        "chose_left_share": (
            "Chose first",
            "Share of A/B choices that picked the response shown first (0.5 expected)",
        ),
        "position_n": ("n (pos.)", "A/B choices the position share is computed on"),
        "position_biased": ("Position bias", "Yes when the Wilson 95% interval excludes 0.5"),
        "chose_longer_share": (
            "Chose longer",
            "Share of A/B choices (of unequal lengths) that picked the longer response",
        ),
        "length_n": ("n (len.)", "A/B choices the length share is computed on"),
        "length_biased": ("Length bias", "Yes when the Wilson 95% interval excludes 0.5"),
        "excluded": ("Excluded", "Left out of training data and labeling"),
    },
    "bias": {
        "monitor": ("Monitor", "What is counted"),
        "count": ("Count", "Choices that picked the first-shown (or the longer) response"),
        "n": ("n", "Human A/B choices counted (ties and both-bad prefer no side)"),
        "share": ("Share", "count / n; 0.5 when there is no bias"),
        "low": ("Low", "Lower bound of the Wilson 95% interval"),
        "high": ("High", "Upper bound of the Wilson 95% interval"),
        "p_value": ("p", "Exact binomial test against 0.5"),
        "biased": ("Biased", "Yes when the 95% interval excludes 0.5"),
    },
    "reward_length": {
        "model_version_id": ("Id", "Model version id"),
        "model_version": ("Reward model", "Model version name"),
        "length_correlation": (
            "Length corr.",
            "Pearson correlation of the model's scores with response length (tokens) on held-out "
            "responses; near 0 is good",
        ),
        "accuracy": ("Accuracy", "Held-out pairs the model orders as the raters did"),
        "length_balanced_accuracy": (
            "Length-bal. acc.",
            "Mean of the two accuracies to the right (pairs of equal length left out): 0.5 for "
            "a model that only prefers the shorter (or the longer) response",
        ),
        "accuracy_longer_preferred": (
            "Acc. longer pref.",
            "Accuracy on held-out pairs whose preferred response is the longer (characters)",
        ),
        "accuracy_shorter_preferred": (
            "Acc. shorter pref.",
            "Accuracy on held-out pairs whose preferred response is the shorter (characters)",
        ),
        "shorter_wins_agreement": (
            "Shorter wins",
            "Share of held-out pairs of unequal length where the model scores the shorter "
            "response higher; far above 0.5 = it mostly learnt length",
        ),
        "temperature": ("Temperature", "Calibration temperature: above 1 = overconfident"),
    },
    "rates": {
        "rater": ("Rater", "Username, or all raters together"),
        "judgments": ("Judgments", "First submissions in the window"),
        "hours_covered": (
            "Hours of data",
            "The part of the window since this rater's (or the project's) first judgment, "
            "at least 5 minutes: what the rate is divided by",
        ),
        "per_hour": ("Per hour", "Judgments divided by hours of data"),
        "eta_hours": ("ETA h", "Hours until the queue is done at this rate"),
    },
    "by_rater": {"judgments": ("Judgments", "First submissions that day")},
    "burndown": {
        "required_total": ("Required", "Judgments required by the queue's tasks created so far"),
        "done_total": ("Done", "Judgments counted against that quota so far"),
        "remaining": ("Remaining", "Required minus done"),
    },
    "leases": {
        "skipped": ("Skipped", "Leases the rater skipped"),
        "expired": ("Expired", "Leases that ran out before an answer"),
    },
    "leaderboard": {
        "rank": ("Rank", "By rating"),
        "rating": (
            "Rating",
            "Bradley-Terry strength on the Elo scale (1000 + 400 log10 p; 400 points = 10:1 odds)",
        ),
        "low": ("Low", "Lower bound of the 95% bootstrap interval over games"),
        "high": ("High", "Upper bound of the 95% bootstrap interval over games"),
        "comparisons": ("Games", "Pairwise judgments between this system and another"),
    },
    "head_to_head": {
        "system_a": ("System A", "The higher-rated system of the two"),
        "system_b": ("System B", "The other system"),
        "games": ("Games", "Pairwise judgments between a response of A and one of B"),
        "a_wins": ("A won", "Judgments preferring A's response"),
        "b_wins": ("B won", "Judgments preferring B's response"),
        "ties": ("Ties", "Tie judgments (half a win each); both-bad is left out"),
        "a_win_rate": ("A's win rate", "(A won + ties / 2) / games"),
        "low": ("Low", "Lower bound of the 95% Wilson interval of A's win rate"),
        "high": ("High", "Upper bound of the 95% Wilson interval of A's win rate"),
    },
    "systems": {
        "same_system_judgments": (
            "Same-system judgments",
            "Judgments between two responses of this system: no game for the leaderboard",
        ),
        "both_bad_share": ("Both bad", "Share of those judged 'both bad'"),
        "low": ("Low", "Lower bound of the 95% Wilson interval of the both-bad share"),
        "high": ("High", "Upper bound of the 95% Wilson interval of the both-bad share"),
        "games": ("Games", "Judgments between this system and another"),
    },
    "policy_versions": {
        "version_id": ("Id", "Model version id"),
        "version": ("Version", "Model version name"),
        "trainer": ("Trainer", "base, or the policy trainer: " + ", ".join(POLICY_TRAINERS)),
        "parent": ("Parent", "The version it was trained from"),
        "run": ("Run", "The training run that made it"),
        "status": ("Status", "training, ready or failed"),
        "active": ("Active", "The project's current policy"),
        "rm_win_rate": (
            "RM win rate",
            "Share of held-out prompts where the run's reward model preferred this version's "
            "sample to its parent's",
        ),
        "mean_reward": ("Mean reward", "Reward-model score of this version's samples"),
        "parent_mean_reward": ("Parent's reward", "Reward-model score of the parent's samples"),
        "mean_length": ("Length", "Mean length of this version's samples (tokens)"),
        "parent_mean_length": ("Parent's length", "Mean length of the parent's samples (tokens)"),
        "kl": ("KL", "KL(version || parent), nats per response"),
        "eval_prompts": ("Prompts", "Held-out prompts of the evaluation"),
        "judge": ("Judge", "The reward model that judged"),
        "note": ("Note", "Why a figure is missing"),
    },
    "runs": {
        "run": ("Run", "Training run id"),
        "status": ("Status", "queued, running, succeeded or failed"),
        "trainers": ("Trainers", "What the run trains"),
        "created": ("Created", "UTC"),
        "finished": ("Finished", "UTC"),
        "metrics": ("Metrics", "The run's final metrics"),
    },
}


def column_header(table_name: str, column: str) -> dict[str, str]:
    """``{"key", "label", "help"}``: a column's shown name and tooltip (the CSV's name is said
    in the tooltip, so a reader can find it in the download)."""
    label, help_text = COLUMNS.get(table_name, {}).get(column) or COMMON.get(column, (column, ""))
    suffix = f"CSV column: {column}"
    return {
        "key": column,
        "label": label,
        "help": f"{help_text}. {suffix}" if help_text else suffix,
    }


ROWS_SHOWN = 200  # a page shows this many rows of a table; its CSV has all of them


def _numeric(values: list[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in present
    )


def shown_table(name: str, t: dict[str, Any]) -> dict[str, Any]:
    """A table as a page shows it (the API and CSV keep the plain table): ``headers``
    (:func:`column_header` plus ``num``: every shown value of the column is a number, so it is
    right-aligned) and ``body``, its first ``ROWS_SHOWN`` rows of :func:`_cell`."""
    shown = t["rows"][:ROWS_SHOWN]
    numeric = [_numeric([row[i] for row in shown]) for i in range(len(t["columns"]))]
    headers = [{**column_header(name, c), "num": numeric[i]} for i, c in enumerate(t["columns"])]
    body = [[_cell(v, numeric[i]) for i, v in enumerate(row)] for row in shown]
    return {**t, "headers": headers, "body": body}


def _cell(value: Any, numeric: bool) -> dict[str, Any]:
    """``{"v": value, "text", "cls"}``: what a cell shows (None as a dash, booleans as yes/no)
    and its classes, so the template only prints them (rendering is most of a page's time)."""
    cls = "num" if numeric else ""
    if value is None:
        return {"v": value, "text": "\u2013", "cls": f"{cls} muted".strip()}  # en dash
    if isinstance(value, bool):
        return {"v": value, "text": "yes" if value else "no", "cls": "flag" if value else cls}
    return {"v": value, "text": value, "cls": cls}


class PageTables(dict[str, dict[str, Any]]):
    """The dashboard's tables for a template, each made into :func:`shown_table` when the page
    first asks for it (a page shows a few of the twenty)."""

    def __init__(self, tables: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self.tables = tables

    def __missing__(self, name: str) -> dict[str, Any]:
        table = shown_table(name, self.tables[name])
        self[name] = table
        return table


def with_headers(tables: dict[str, dict[str, Any]]) -> PageTables:
    return PageTables(tables)
