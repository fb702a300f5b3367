#!/usr/bin/env bash
# Stop the Kafka broker, Redis and the Redis Sentinel and Cluster deployments (redis-ha) started by
# scripts/services-up.sh, by their pid files only (SIGTERM, up to ~20 s, then SIGKILL). Idempotent.
# `--purge` also deletes the Kafka data dir, so the next services-up formats a fresh cluster, and
# the redis-ha state dir (sentinel.conf, nodes.conf, logs).
#
#   services-down.sh [--purge]                   all services (kafka, redis, then redis-ha)
#   services-down.sh kafka|redis|redis-ha ...    only the services named: the fault tests stop one
#                                                of them and bring it back with `services-up.sh NAME`.
#                                                Kafka keeps its data dir (unless --purge); the Redis
#                                                servers run without persistence.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.services"
KPID="$STATE/kafka/kafka.pid"
RPID="$STATE/redis/redis.pid"

HADIR="$STATE/redis-ha"

usage="usage: $0 [--purge] [kafka|redis|redis-ha ...]"
purge=0
want_kafka=0 want_redis=0 want_ha=0 named=0
for arg in "$@"; do
  case "$arg" in
    --purge) purge=1 ;;
    kafka) want_kafka=1 named=1 ;;
    redis) want_redis=1 named=1 ;;
    redis-ha) want_ha=1 named=1 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
if [ "$named" -eq 0 ]; then want_kafka=1 want_redis=1 want_ha=1; fi
if [ "$purge" -eq 1 ] && [ "$want_kafka" -eq 0 ] && [ "$want_ha" -eq 0 ]; then
  echo "--purge wipes Kafka's data and redis-ha's state: it needs kafka or redis-ha among the services stopped" >&2; exit 2
fi

log() { printf '[services-down] %s\n' "$*"; }

# alive PID: the process runs (an exited one its parent has not reaped yet, a zombie, does not).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [ "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)" != Z ]
}

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
  for ((i = 0; i < 200; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    log "$name: still alive after 20s, SIGKILL pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$file" "${file%.pid}.port"
  log "$name: stopped"
}

if [ "$want_kafka" -eq 1 ]; then stop kafka "$KPID" kafka.Kafka; fi
if [ "$want_redis" -eq 1 ]; then stop redis "$RPID" redis-server; fi
if [ "$want_ha" -eq 1 ]; then
  # The Sentinel first: it would fail its master over if the master stopped under it.
  for name in sentinel replica master cluster-0 cluster-1 cluster-2; do
    stop "redis-ha $name" "$HADIR/$name.pid" redis-server
  done
fi

if [ "$purge" -eq 1 ] && [ "$want_kafka" -eq 1 ]; then
  rm -rf "$STATE/kafka/data"
  log "kafka: data dir purged"
fi
if [ "$purge" -eq 1 ] && [ "$want_ha" -eq 1 ]; then
  rm -rf "$HADIR"
  log "redis-ha: state dir purged"
fi
