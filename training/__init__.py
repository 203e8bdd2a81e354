"""Plain Python ML library: preference records in, reward models and policies out.

Layers (each a small module): ``records`` (data in memory + JSONL loaders), ``tokenize`` (chat
template / plain format, masking, truncation), ``batching`` (length buckets), ``losses`` (pure
functions), ``loop`` (the shared optimisation loop), ``trainers/`` (one file per method),
``generate``, ``evaluate``, ``artifacts`` and the CLI in ``__main__``.

This package never imports Django or anything from ``annotation``/``workers``: it must run on a GPU
box from a JSONL file alone.
"""

__version__ = "0.1.0"
