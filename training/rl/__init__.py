"""Online RL: the policy is optimised against a reward on its own samples.

``ppo`` (actor + value head + frozen reference + reward model), the critic-free ``rloo`` and
``grpo``, and ``best_of_n`` (rejection-sampling fine-tuning). They share ``rollout`` (sampling
through :func:`training.generate.generate`, per-token log-probs of policy and reference, end of
turn and truncation), ``rewards`` (reward-model artifacts and Python rules), ``losses`` (pure
functions), ``monitors`` (reward-hacking monitors and alarms) and the on-policy loop in
``engine``. Configs are in ``config``.

    from training.rl import ppo
    from training.rl.config import PPOConfig
    result = ppo.run(PPOConfig(model=..., output_dir=...), prompts, eval_prompts,
                     reward_model="/artifacts/rm" or callable, gold=None, progress=cb)
    result.history   # one dict per step with the monitors (training.rl.monitors)
    result.alarms    # [{"step", "alarm": "length" | "kl", "value"}]
"""
