#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) accept
# connections, and that moto is installed for the S3 store tests, which start
# their own moto server.
# A service that is down is started with this machine's own command; if it
# still does not answer, the script names it and exits non-zero.
set -euo pipefail

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_ready() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

wait_for() {
  local check=$1
  for _ in $(seq 1 30); do
    if "$check"; then return 0; fi
    sleep 1
  done
  return 1
}

if ! pg_ready; then
  echo "PostgreSQL is not responding on 127.0.0.1:5432; starting it" >&2
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  if ! wait_for pg_ready; then
    echo "error: PostgreSQL is missing: nothing responds on 127.0.0.1:5432 and it could not be started." >&2
    echo "       Install and start PostgreSQL 15+ with trust auth for user postgres on 127.0.0.1:5432." >&2
    exit 1
  fi
fi

if ! redis_ready; then
  echo "Redis is not responding on 127.0.0.1:6379; starting it" >&2
  if command -v redis-server >/dev/null 2>&1; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
  if ! wait_for redis_ready; then
    echo "error: Redis is missing: nothing responds on 127.0.0.1:6379 and it could not be started." >&2
    echo "       Install and start Redis 7 on 127.0.0.1:6379." >&2
    exit 1
  fi
fi

if ! python3 -c 'import moto.server' 2>/dev/null; then
  echo "moto is not installed; installing moto[server] with pip" >&2
  if ! python3 -m pip install --quiet 'moto[server]'; then
    echo "error: installing moto[server] with pip failed; the S3 store tests need it." >&2
    echo "       Install it with: python3 -m pip install 'moto[server]'" >&2
    exit 1
  fi
fi

echo "PostgreSQL and Redis are up, and moto is installed"
