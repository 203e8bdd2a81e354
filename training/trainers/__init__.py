"""One trainer per file: ``reward_model``, ``dpo``, ``kto``, ``sft``.

Each exposes ``setup``, ``train_step``, ``evaluate``, ``save`` and
``run(config, train_records=None, eval_records=None, progress=None) -> RunResult``.
"""
