"""One offline trainer per file: ``reward_model``, ``dpo``, ``kto``, ``sft``.

Each follows the protocol of :mod:`training.registry` — ``run(config, train_records=None,
eval_records=None, progress=None) -> RunResult`` — with the same few pieces read top to bottom:
``setup`` (records, tokenizer, model, reference log-probs), ``train_step``, ``evaluate`` and
``run``, which hands them to :func:`training.loop.fit` and ends in
:func:`training.trainers.common.finish_run` (the result and the artifact). Each is listed once in
:mod:`training.contract.trainers`; ``NAME`` in the module is its entry's name.
"""
