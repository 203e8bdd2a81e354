"""The retrain cycle's steps, in order, with their share of the progress bar and what they do.

One list for the worker (``workers/steps.py`` weighs progress with it; ``workers/pipelines.py``
runs the steps in this order, a test checks the two agree) and for the run page, which shows
every step, finished or not. Pure Python: ``annotation`` never imports the worker or torch.
"""

from __future__ import annotations

from typing import NamedTuple


class StepInfo(NamedTuple):
    name: str
    weight: float  # share of the cycle's progress bar
    title: str  # what the run page says the step does


RUN_STEPS: tuple[StepInfo, ...] = (
    StepInfo("snapshot", 0.02, "Snapshot of the eligible judgments"),
    StepInfo("records", 0.03, "Judgments to training records"),
    StepInfo("reward", 0.20, "Train the reward model"),
    StepInfo("policy", 0.35, "Train the policies"),
    StepInfo("evaluate", 0.10, "Evaluate each new policy against its parent"),
    StepInfo("register", 0.02, "Promotion and registration"),
    StepInfo("generate", 0.18, "Generate new candidates"),
    StepInfo("select", 0.07, "Select the most informative pairs"),
    StepInfo("tasks", 0.03, "Create labeling tasks"),
)
STEP_WEIGHTS: dict[str, float] = {s.name: s.weight for s in RUN_STEPS}
