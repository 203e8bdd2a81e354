#!/usr/bin/env bash
# Run the test suite. Uses PostgreSQL at 127.0.0.1:5432 when it answers (as CI does), so the
# concurrency properties are proven there; otherwise falls back to SQLite and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DATABASE_URL:-}" ]; then
  if .venv/bin/python - <<'PY' 2>/dev/null
import psycopg
psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=2).close()
PY
  then
    export DATABASE_URL="postgresql://postgres@127.0.0.1:5432/prefloop"
  else
    echo "PostgreSQL not reachable on 127.0.0.1:5432: running on SQLite (PostgreSQL-only tests skip)."
  fi
fi
if [ -z "${REDIS_URL:-}" ] && (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  export REDIS_URL="redis://127.0.0.1:6379/15"
fi
echo "DATABASE_URL=${DATABASE_URL:-sqlite} REDIS_URL=${REDIS_URL:-none}"
mkdir -p test-artifacts
exec .venv/bin/pytest "$@"
