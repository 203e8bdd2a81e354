"""The data contract between judgments and training, in one place.

- :mod:`~training.contract.records`: the record types the trainers read (``PreferencePair``,
  ``UnpairedExample``, ``SFTExample``) and what a prompt is;
- :mod:`~training.contract.judgments`: the rules that turn judgments (plain rows) into records,
  and the aggregation across raters;
- :mod:`~training.contract.render`: prompt text without a chat template (the HH-RLHF format);
- :mod:`~training.contract.trainers`: the table of registered trainers (names, labels, kinds).

Standard library only (a test checks it): the web process imports it for exports without loading
torch, the loop imports it for its retrain cycles, and ``training`` for its trainers.
"""

from training.contract.judgments import (
    AGGREGATIONS,
    DATASETS,
    Item,
    JudgmentRow,
    Records,
    Sink,
    agreement,
    build_records,
    item_records,
)
from training.contract.records import (
    DataError,
    Message,
    PreferencePair,
    Prompt,
    SFTExample,
    UnpairedExample,
)
from training.contract.render import plain_format, standard_prompt

__all__ = [
    "AGGREGATIONS",
    "DATASETS",
    "DataError",
    "Item",
    "JudgmentRow",
    "Message",
    "PreferencePair",
    "Prompt",
    "Records",
    "SFTExample",
    "Sink",
    "UnpairedExample",
    "agreement",
    "build_records",
    "item_records",
    "plain_format",
    "standard_prompt",
]
