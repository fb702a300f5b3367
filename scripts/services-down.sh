#!/usr/bin/env bash
# Stop the Kafka broker and Redis started by scripts/services-up.sh, by their pid files only
# (SIGTERM, up to ~20 s, then SIGKILL). Idempotent. `--purge` also deletes the Kafka data dir,
# so the next services-up formats a fresh cluster.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.services"
KPID="$STATE/kafka/kafka.pid"
RPID="$STATE/redis/redis.pid"

purge=0
for arg in "$@"; do
  case "$arg" in
    --purge) purge=1 ;;
    -h|--help) echo "usage: $0 [--purge]"; exit 0 ;;
    *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
  esac
done

log() { printf '[services-down] %s\n' "$*"; }

# stop NAME PIDFILE PATTERN: the pid must be alive and its command line must contain PATTERN
# (guards against a stale pid file whose pid was reused by another process).
stop() {
  local name="$1" file="$2" pattern="$3" pid i
  if [ ! -s "$file" ]; then log "$name: no pid file, nothing to stop"; return 0; fi
  pid="$(tr -dc '0-9' <"$file")"
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    log "$name: not running (stale pid file)"; rm -f "$file" "${file%.pid}.port"; return 0
  fi
  if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"; then
    log "$name: pid $pid is not $name any more; leaving it alone"; rm -f "$file" "${file%.pid}.port"; return 0
  fi
  log "$name: SIGTERM pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 40; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: still alive after 20s, SIGKILL pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$file" "${file%.pid}.port"
  log "$name: stopped"
}

stop kafka "$KPID" kafka.Kafka
stop redis "$RPID" redis-server

if [ "$purge" -eq 1 ]; then
  rm -rf "$STATE/kafka/data"
  log "kafka: data dir purged"
fi
