#!/usr/bin/env bash
# Bring up the product on its embedded default: SQLite + a file-based Celery broker, the web
# server, a worker and beat. No external server needed. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p var
$PY manage.py migrate --noinput -v0
# A tiny random model (offline) for the demo project's loop to train from.
[ -f var/models/demo-base/config.json ] || $PY -m training.tiny var/models/demo-base >/dev/null
$PY manage.py demo --base-model "$PWD/var/models/demo-base"
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
