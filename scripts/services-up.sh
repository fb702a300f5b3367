#!/usr/bin/env bash
# Start a REAL Apache Kafka broker (single-node KRaft, jars from Maven Central, no Docker) and a REAL
# Redis on this machine for webhookd's tests. Idempotent: what already answers is left alone.
#
# State lives in .services/ at the repo root (gitignored):
#   .services/kafka/libs/        broker jars + log4j2 binding (fetched with mvn only when missing)
#   .services/kafka/data/        KRaft log dir (formatted once; `services-down.sh --purge` removes it)
#   .services/kafka/kafka.pid    java pid;  .services/kafka/logs/{server.log,kafka.out}
#   .services/redis/             redis.pid, redis.log
#   .services/tls/               a self-signed CA (ca.crt), the server certificate both services use
#                                (127.0.0.1 and localhost) and a client certificate for mutual TLS;
#                                generated with openssl once, kept by --purge
#
# Besides the plaintext ports the tests use by default, the same processes offer what production
# connectivity needs (webhookd's integration tests use them when WEBHOOKD_TEST_*_SASL/TLS_* are set):
#   Kafka SASL_PLAINTEXT on KAFKA_SASL_PORT (KAFKA_PORT+2) and SASL_SSL on KAFKA_SASL_SSL_PORT
#   (KAFKA_PORT+3), SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN for user KAFKA_SASL_USER / KAFKA_SASL_PASSWORD;
#   Redis TLS on REDIS_TLS_PORT (REDIS_PORT+1; client certificates optional, verified when presented)
#   and an ACL user REDIS_ACL_USER / REDIS_ACL_PASSWORD (the default user stays open on both ports).
# A broker or Redis already running from before these existed is left alone, with a warning saying
# how to restart it.
#
# redis-ha: the Redis deployments go-redis's universal client supports besides one server, each in
# processes of its own (the fault tests stop and restart the plain Redis; these are not touched):
#   Sentinel: a master on REDIS_SENTINEL_MASTER_PORT (REDIS_PORT+2, 6381) with one replica on
#             REDIS_SENTINEL_REPLICA_PORT (REDIS_PORT+3, 6382), monitored as REDIS_SENTINEL_MASTER
#             (webhookd-test) by one Sentinel on REDIS_SENTINEL_PORT (REDIS_PORT+20000, 26379), quorum 1,
#             so that `SENTINEL FAILOVER webhookd-test` swaps master and replica (the tests do).
#   Cluster:  three masters, no replicas, on REDIS_CLUSTER_PORT (REDIS_PORT+621, 7000) and the next
#             two ports (cluster bus on each port + 10000: 17000-17002).
# State (pid, log, sentinel.conf, nodes.conf) in .services/redis-ha/; no persistence. What answers
# healthy is left alone; a deployment found half up (a process gone, a cluster not formed) is
# stopped and recreated empty.
#
# `services-up.sh kafka`, `services-up.sh redis` or `services-up.sh redis-ha` starts (and waits for)
# only the services named, so a fault test can bring back the one it stopped with
# `services-down.sh NAME`; no argument means all three.
#
# Env: KAFKA_VERSION (default 4.1.1), LOG4J_VERSION (default per Kafka version), KAFKA_PORT (9092),
#      KAFKA_CONTROLLER_PORT (KAFKA_PORT+1), REDIS_PORT (6379), KAFKA_HEAP_OPTS (-Xms512m -Xmx1g),
#      SERVICES_WAIT_SECONDS (90), MVN_ARGS (extra mvn args, e.g. -Dmaven.repo.local=...),
#      KAFKA_SASL_PORT, KAFKA_SASL_SSL_PORT, KAFKA_SASL_USER (webhookd), KAFKA_SASL_PASSWORD,
#      REDIS_TLS_PORT, REDIS_ACL_USER (webhookd), REDIS_ACL_PASSWORD: test-only credentials;
#      REDIS_SENTINEL_MASTER_PORT, REDIS_SENTINEL_REPLICA_PORT, REDIS_SENTINEL_PORT,
#      REDIS_SENTINEL_MASTER, REDIS_CLUSTER_PORT (see redis-ha above).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.services"

KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
case "$KAFKA_VERSION" in
  4.0.*|4.1.*) default_log4j=2.24.3 ;;
  *)           default_log4j=2.25.3 ;;
esac
LOG4J_VERSION="${LOG4J_VERSION:-$default_log4j}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
REDIS_PORT="${REDIS_PORT:-6379}"
KAFKA_SASL_PORT="${KAFKA_SASL_PORT:-$((KAFKA_PORT + 2))}"
KAFKA_SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-$((KAFKA_PORT + 3))}"
KAFKA_SASL_USER="${KAFKA_SASL_USER:-webhookd}"
KAFKA_SASL_PASSWORD="${KAFKA_SASL_PASSWORD:-webhookd-kafka-test-secret}"
REDIS_TLS_PORT="${REDIS_TLS_PORT:-$((REDIS_PORT + 1))}"
REDIS_ACL_USER="${REDIS_ACL_USER:-webhookd}"
REDIS_ACL_PASSWORD="${REDIS_ACL_PASSWORD:-webhookd-redis-test-secret}"
REDIS_SENTINEL_MASTER_PORT="${REDIS_SENTINEL_MASTER_PORT:-$((REDIS_PORT + 2))}"
REDIS_SENTINEL_REPLICA_PORT="${REDIS_SENTINEL_REPLICA_PORT:-$((REDIS_PORT + 3))}"
REDIS_SENTINEL_PORT="${REDIS_SENTINEL_PORT:-$((REDIS_PORT + 20000))}"
REDIS_SENTINEL_MASTER="${REDIS_SENTINEL_MASTER:-webhookd-test}"
REDIS_CLUSTER_PORT="${REDIS_CLUSTER_PORT:-$((REDIS_PORT + 621))}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms512m -Xmx1g}"
WAIT_SECONDS="${SERVICES_WAIT_SECONDS:-90}"

KDIR="$STATE/kafka"
LIBS="$KDIR/libs"
DATA="$KDIR/data"
KLOGS="$KDIR/logs"
KPID="$KDIR/kafka.pid"
KPROPS="$KDIR/server.properties"
RDIR="$STATE/redis"
HADIR="$STATE/redis-ha"
TLS="$STATE/tls"
# SCRAM users are in Kafka's metadata log: this marker in the data dir says they were added.
SCRAM_MARK="$DATA/.webhookd-scram-user"
RPID="$RDIR/redis.pid"
# The port each service was started on sits next to its pid file: one .services/ runs one of each.
KPORTF="$KDIR/kafka.port"
RPORTF="$RDIR/redis.port"

log() { printf '[services-up] %s\n' "$*"; }
die() { printf '[services-up] ERROR: %s\n' "$*" >&2; exit 1; }

want_kafka=0 want_redis=0 want_ha=0
for arg in "$@"; do
  case "$arg" in
    kafka) want_kafka=1 ;;
    redis) want_redis=1 ;;
    redis-ha) want_ha=1 ;;
    -h|--help) echo "usage: $0 [kafka|redis|redis-ha ...]"; exit 0 ;;
    *) echo "usage: $0 [kafka|redis|redis-ha ...]" >&2; exit 2 ;;
  esac
done
if [ "$#" -eq 0 ]; then want_kafka=1 want_redis=1 want_ha=1; fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $*"; fi
}

apt_updated=0
apt_install() {
  local out="$STATE/apt.out"
  if [ "$apt_updated" -eq 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$out" 2>&1 \
      || { tail -n 30 "$out" >&2; die "apt-get update failed"; }
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >>"$out" 2>&1 \
    || { tail -n 30 "$out" >&2; die "apt-get install $* failed"; }
}

# pid from a pid file if that process is alive and its command line contains $2.
live_pid() {
  local file="$1" pattern="$2" pid
  [ -s "$file" ] || return 1
  pid="$(tr -dc '0-9' <"$file")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern" || return 1
  echo "$pid"
}

# Kafka answers only when it serves requests: send ApiVersions v0 (key 18) and wait for any reply.
# (A bare TCP connect is not enough: the listening socket is bound before the broker is unfenced.)
kafka_answers() {
  local port="$1" n
  # shellcheck disable=SC2016  # $0 is expanded by the inner bash
  n="$(timeout 3 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
        printf "\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x01\x00\x02up" >&3
        head -c 4 <&3 | wc -c' "$port" 2>/dev/null)" || return 1
  [ "${n:-0}" -ge 4 ]
}

redis_answers() {
  [ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]
}

tcp_answers() {
  # shellcheck disable=SC2016  # $0 is expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null
}

mkdir -p "$KDIR" "$KLOGS" "$RDIR"

# ---------------------------------------------------------------- TLS material (both services)
# A CA, a server certificate for 127.0.0.1/localhost and a client certificate, valid 10 years.
tls_material() {
  [ -s "$TLS/ca.crt" ] && [ -s "$TLS/server.crt" ] && [ -s "$TLS/server-keystore.pem" ] && [ -s "$TLS/client.crt" ] && return 0
  command -v openssl >/dev/null || { log "installing openssl (apt)"; apt_install openssl; }
  log "generating a self-signed CA and certificates in $TLS"
  rm -rf "$TLS.tmp"; mkdir -p "$TLS.tmp"
  (
    cd "$TLS.tmp"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=webhookd test CA" \
      -keyout ca.key -out ca.crt
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out server.crt
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl req -newkey rsa:2048 -nodes -subj "/CN=webhookd" -keyout client.key -out client.csr
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile client.ext -out client.crt
    # Kafka's PEM key store: an unencrypted PKCS#8 key followed by the certificate.
    { openssl pkcs8 -topk8 -nocrypt -in server.key; cat server.crt; } >server-keystore.pem
    rm -f ./*.csr ./*.ext ./*.srl
    chmod 600 ./*.key server-keystore.pem
  ) >"$STATE/openssl.out" 2>&1 || { cat "$STATE/openssl.out" >&2; die "openssl could not generate the test certificates"; }
  rm -rf "$TLS"; mv "$TLS.tmp" "$TLS"
}
tls_material

# ---------------------------------------------------------------- tools
# redis-cli is also the check that Redis answers.
if [ "$((want_redis + want_ha))" -gt 0 ] && { ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; }; then
  log "installing redis-server (apt)"; apt_install redis-server
fi
if [ "$want_kafka" -eq 1 ]; then
  command -v java >/dev/null || { log "installing a JRE (apt)"; apt_install openjdk-17-jre-headless; }
fi

# A service that already answers but was not started from this checkout (another clone's, or the
# machine's own) is foreign: it is used as it is, never reconfigured (no ACL user, no SCRAM user, no
# jars fetched for it), and its TLS material is not this checkout's .services/tls.
redis_foreign=0 kafka_foreign=0
if [ "$want_redis" -eq 1 ] && redis_answers && ! live_pid "$RPID" redis-server >/dev/null; then redis_foreign=1; fi
if [ "$want_kafka" -eq 1 ] && kafka_answers "$KAFKA_PORT" && ! live_pid "$KPID" kafka.Kafka >/dev/null; then kafka_foreign=1; fi
foreign_note="not started from this checkout: used as it is, left unchanged; its TLS CA is not $TLS"

# ---------------------------------------------------------------- redis
if [ "$want_redis" -eq 0 ]; then
  :
elif redis_answers; then
  if [ "$redis_foreign" -eq 1 ]; then
    log "redis already answers on 127.0.0.1:$REDIS_PORT ($foreign_note)"
  else
    log "redis already answers on 127.0.0.1:$REDIS_PORT"
  fi
elif pid="$(live_pid "$RPID" redis-server)"; then
  die "redis (pid $pid) started by services-up runs on port $(cat "$RPORTF" 2>/dev/null || echo '?'), not $REDIS_PORT; run scripts/services-down.sh first"
else
  log "starting redis-server on 127.0.0.1:$REDIS_PORT"
  echo "$REDIS_PORT" >"$RPORTF"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" \
    --tls-port "$REDIS_TLS_PORT" --tls-cert-file "$TLS/server.crt" --tls-key-file "$TLS/server.key" \
    --tls-ca-cert-file "$TLS/ca.crt" --tls-auth-clients optional \
    --save "" --appendonly no --dir "$RDIR" \
    --pidfile "$RPID" --logfile "$RDIR/redis.log"
fi

# ---------------------------------------------------------------- kafka jars
if [ "$want_kafka" -eq 1 ] && [ "$kafka_foreign" -eq 0 ] && { [ ! -f "$LIBS/.version" ] || [ "$(cat "$LIBS/.version")" != "$KAFKA_VERSION log4j-$LOG4J_VERSION" ]; }; then
  command -v mvn >/dev/null || { log "installing maven (apt)"; apt_install maven; }
  log "fetching Kafka $KAFKA_VERSION + log4j $LOG4J_VERSION jars with mvn into $LIBS"
  rm -rf "$LIBS.tmp"
  # shellcheck disable=SC2086
  mvn -q -B -Dstyle.color=never ${MVN_ARGS:-} -f "$ROOT/scripts/kafka/pom.xml" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" \
    -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$LOG4J_VERSION" >"$KLOGS/mvn.out" 2>&1 \
    || { tail -n 40 "$KLOGS/mvn.out" >&2; die "mvn could not fetch Kafka $KAFKA_VERSION"; }
  [ -f "$LIBS.tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || die "kafka_2.13-$KAFKA_VERSION.jar missing after mvn"
  rm -rf "$ROOT/scripts/kafka/target"
  echo "$KAFKA_VERSION log4j-$LOG4J_VERSION" >"$LIBS.tmp/.version"
  rm -rf "$LIBS"
  mv "$LIBS.tmp" "$LIBS"
fi

# ---------------------------------------------------------------- kafka config + storage
if [ "$want_kafka" -eq 1 ]; then
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@SASL_PORT@|$KAFKA_SASL_PORT|g" -e "s|@SASL_SSL_PORT@|$KAFKA_SASL_SSL_PORT|g" \
      -e "s|@SASL_USER@|$KAFKA_SASL_USER|g" -e "s|@SASL_PASSWORD@|$KAFKA_SASL_PASSWORD|g" \
      -e "s|@TLS_DIR@|$TLS|g" -e "s|@DATA_DIR@|$DATA|g" "$ROOT/scripts/kafka/server.properties.tmpl" >"$KPROPS"
fi

JAVA_LOG_OPTS=(-Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.yaml" -Dkafka.logs.dir="$KLOGS")

started_kafka=0
if [ "$want_kafka" -eq 0 ]; then
  :
elif kafka_answers "$KAFKA_PORT"; then
  if [ "$kafka_foreign" -eq 1 ]; then
    log "kafka already answers on 127.0.0.1:$KAFKA_PORT ($foreign_note)"
  else
    log "kafka already answers on 127.0.0.1:$KAFKA_PORT"
  fi
elif pid="$(live_pid "$KPID" kafka.Kafka)"; then
  if [ "$(cat "$KPORTF" 2>/dev/null)" != "$KAFKA_PORT" ]; then
    die "kafka (pid $pid) started by services-up runs on port $(cat "$KPORTF" 2>/dev/null || echo '?'), not $KAFKA_PORT; run scripts/services-down.sh first"
  fi
  log "kafka (pid $pid) is starting; waiting for it"
else
  if [ ! -f "$DATA/meta.properties" ]; then
    cluster_id="$(java -cp "$LIBS/*" "${JAVA_LOG_OPTS[@]}" kafka.tools.StorageTool random-uuid | tail -n 1)"
    log "formatting $DATA (cluster id $cluster_id)"
    mkdir -p "$DATA"
    java -cp "$LIBS/*" "${JAVA_LOG_OPTS[@]}" kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$KPROPS" --ignore-formatted \
      --add-scram "SCRAM-SHA-256=[name=$KAFKA_SASL_USER,password=$KAFKA_SASL_PASSWORD]" \
      --add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_USER,password=$KAFKA_SASL_PASSWORD]" \
      >"$KLOGS/format.out" 2>&1 \
      || { cat "$KLOGS/format.out" >&2; die "StorageTool format failed"; }
    echo "$KAFKA_SASL_USER $KAFKA_SASL_PASSWORD" >"$SCRAM_MARK"
  fi
  [ ! -f "$KLOGS/server.log" ] || mv -f "$KLOGS/server.log" "$KLOGS/server.log.prev"
  log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT)"
  # shellcheck disable=SC2086
  nohup java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    "${JAVA_LOG_OPTS[@]}" -cp "$LIBS/*" kafka.Kafka "$KPROPS" \
    >>"$KLOGS/kafka.out" 2>&1 </dev/null &
  echo $! >"$KPID"
  echo "$KAFKA_PORT" >"$KPORTF"
  started_kafka=1
fi

# ---------------------------------------------------------------- redis-ha: Sentinel and Cluster
# Started while Kafka boots; each step waits at most HA_WAIT seconds and fails loudly with the logs.
HA_WAIT=20

# rcli PORT ARGS...: one redis-cli call, its reply without CRs (errors too: redis-cli prints them).
rcli() { local port="$1"; shift; timeout 5 redis-cli -h 127.0.0.1 -p "$port" "$@" 2>&1 | tr -d '\r'; }
pong() { [ "$(rcli "$1" ping)" = "PONG" ]; }
# field PORT SECTION NAME: a field of INFO SECTION.
info_field() { rcli "$1" info "$2" | sed -n "s/^$3://p"; }
ha_logs() {
  local f
  for f in "$HADIR"/*.log; do
    [ -f "$f" ] || continue
    echo "----- tail of $f -----" >&2; tail -n 20 "$f" >&2
  done
}
ha_die() { ha_logs; die "$*"; }
# ha_wait WHAT CMD...: retry CMD every 0.2 s for up to HA_WAIT seconds.
ha_wait() {
  local what="$1" end=$((SECONDS + HA_WAIT)); shift
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || ha_die "redis-ha: $what not within ${HA_WAIT}s"
    sleep 0.2
  done
}
# ha_server NAME PORT ARGS...: a daemonized redis-server, pid/port/log in $HADIR, data dir $HADIR/NAME.
ha_server() {
  local name="$1" port="$2"; shift 2
  mkdir -p "$HADIR/$name"
  echo "$port" >"$HADIR/$name.port"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --dir "$HADIR/$name" --pidfile "$HADIR/$name.pid" --logfile "$HADIR/$name.log" "$@" \
    || ha_die "redis-ha: redis-server $name on 127.0.0.1:$port did not start"
}
ha_port_free() {
  if tcp_answers "$1"; then
    die "redis-ha: 127.0.0.1:$1 is taken by another process; set ${2} (see the head of this script)"
  fi
}

sentinel_master() { rcli "$REDIS_SENTINEL_PORT" SENTINEL get-master-addr-by-name "$REDIS_SENTINEL_MASTER" | paste -sd: -; }
# Healthy: the Sentinel names one of our two servers as master, both answer, the other replicates it,
# and the Sentinel knows the replica (so that a failover has somewhere to go).
sentinel_healthy() {
  local master replica
  pong "$REDIS_SENTINEL_PORT" || return 1
  case "$(sentinel_master)" in
    "127.0.0.1:$REDIS_SENTINEL_MASTER_PORT") master=$REDIS_SENTINEL_MASTER_PORT replica=$REDIS_SENTINEL_REPLICA_PORT ;;
    "127.0.0.1:$REDIS_SENTINEL_REPLICA_PORT") master=$REDIS_SENTINEL_REPLICA_PORT replica=$REDIS_SENTINEL_MASTER_PORT ;;
    *) return 1 ;;
  esac
  [ "$(info_field "$master" replication role)" = master ] || return 1
  [ "$(info_field "$replica" replication master_port)" = "$master" ] || return 1
  [ "$(info_field "$replica" replication master_link_status)" = up ] || return 1
  rcli "$REDIS_SENTINEL_PORT" SENTINEL master "$REDIS_SENTINEL_MASTER" | grep -A1 -x num-slaves | tail -n 1 | grep -qx 1
}
replica_linked() { [ "$(info_field "$REDIS_SENTINEL_REPLICA_PORT" replication master_link_status)" = up ]; }

cluster_ports() { echo "$REDIS_CLUSTER_PORT" "$((REDIS_CLUSTER_PORT + 1))" "$((REDIS_CLUSTER_PORT + 2))"; }
cluster_healthy() {
  local port
  for port in $(cluster_ports); do
    rcli "$port" cluster info | grep -qx 'cluster_state:ok' || return 1
    rcli "$port" cluster info | grep -qx 'cluster_known_nodes:3' || return 1
  done
}
all_pong() { local port; for port in "$@"; do pong "$port" || return 1; done; }

if [ "$want_ha" -eq 1 ]; then
  mkdir -p "$HADIR"
  if sentinel_healthy && cluster_healthy; then
    log "redis-ha already answers: Sentinel 127.0.0.1:$REDIS_SENTINEL_PORT ($REDIS_SENTINEL_MASTER at $(sentinel_master)), Cluster 127.0.0.1:$REDIS_CLUSTER_PORT-$((REDIS_CLUSTER_PORT + 2))"
  else
    if compgen -G "$HADIR/*.pid" >/dev/null; then
      log "redis-ha is half up: stopping what is left and starting it again empty"
      "$ROOT/scripts/services-down.sh" redis-ha
    fi
    ha_port_free "$REDIS_SENTINEL_MASTER_PORT" REDIS_SENTINEL_MASTER_PORT
    ha_port_free "$REDIS_SENTINEL_REPLICA_PORT" REDIS_SENTINEL_REPLICA_PORT
    ha_port_free "$REDIS_SENTINEL_PORT" REDIS_SENTINEL_PORT
    for port in $(cluster_ports); do ha_port_free "$port" REDIS_CLUSTER_PORT; done

    log "starting redis-ha: Sentinel master 127.0.0.1:$REDIS_SENTINEL_MASTER_PORT, replica :$REDIS_SENTINEL_REPLICA_PORT, Sentinel :$REDIS_SENTINEL_PORT; Cluster :$REDIS_CLUSTER_PORT-$((REDIS_CLUSTER_PORT + 2))"
    rm -f "$HADIR"/*.log
    # No 5 s wait for more replicas before a full sync: the replica links at once (after a failover too).
    ha_server master "$REDIS_SENTINEL_MASTER_PORT" --repl-diskless-sync-delay 0
    ha_server replica "$REDIS_SENTINEL_REPLICA_PORT" --repl-diskless-sync-delay 0 --replicaof 127.0.0.1 "$REDIS_SENTINEL_MASTER_PORT"
    for i in 0 1 2; do
      rm -f "$HADIR/cluster-$i/nodes.conf"
      ha_server "cluster-$i" "$((REDIS_CLUSTER_PORT + i))" --cluster-enabled yes \
        --cluster-config-file nodes.conf --cluster-node-timeout 2000
    done
    # A Sentinel rewrites its configuration file: a fresh one each time. It starts once the replica
    # is linked, so that its first INFO of the master lists the replica.
    ha_wait "the Sentinel's replica linked to its master" replica_linked
    mkdir -p "$HADIR/sentinel"
    cat >"$HADIR/sentinel.conf" <<CONF
port $REDIS_SENTINEL_PORT
bind 127.0.0.1
daemonize yes
pidfile $HADIR/sentinel.pid
logfile $HADIR/sentinel.log
dir $HADIR/sentinel
sentinel monitor $REDIS_SENTINEL_MASTER 127.0.0.1 $REDIS_SENTINEL_MASTER_PORT 1
sentinel down-after-milliseconds $REDIS_SENTINEL_MASTER 2000
sentinel failover-timeout $REDIS_SENTINEL_MASTER 10000
CONF
    echo "$REDIS_SENTINEL_PORT" >"$HADIR/sentinel.port"
    redis-server "$HADIR/sentinel.conf" --sentinel || ha_die "redis-ha: the Sentinel did not start"

    # shellcheck disable=SC2046  # three ports, split on purpose
    ha_wait "the cluster nodes answering" all_pong $(cluster_ports)
    # shellcheck disable=SC2046
    timeout 60 redis-cli --cluster create $(cluster_ports | sed 's/[0-9][0-9]*/127.0.0.1:&/g') \
      --cluster-replicas 0 --cluster-yes >"$HADIR/cluster-create.out" 2>&1 \
      || { cat "$HADIR/cluster-create.out" >&2; ha_die "redis-ha: redis-cli --cluster create failed"; }
    ha_wait "cluster_state:ok on the three cluster nodes" cluster_healthy
    ha_wait "the Sentinel monitoring its master and replica" sentinel_healthy
    log "redis-ha ready: Sentinel 127.0.0.1:$REDIS_SENTINEL_PORT ($REDIS_SENTINEL_MASTER at $(sentinel_master)), Cluster 127.0.0.1:$REDIS_CLUSTER_PORT-$((REDIS_CLUSTER_PORT + 2)) (after ${SECONDS}s)"
  fi
fi

# ---------------------------------------------------------------- wait
kafka_log_tail() {
  echo "----- tail of $KLOGS/server.log -----" >&2
  tail -n 60 "$KLOGS/server.log" >&2 2>/dev/null || true
  echo "----- tail of $KLOGS/kafka.out -----" >&2
  tail -n 30 "$KLOGS/kafka.out" >&2 2>/dev/null || true
}

deadline=$((SECONDS + WAIT_SECONDS))
redis_ok=0 kafka_ok=0
# A service not asked for counts as done: it is neither started nor waited for.
[ "$want_redis" -eq 1 ] || redis_ok=1
[ "$want_kafka" -eq 1 ] || kafka_ok=1
while :; do
  if [ "$redis_ok" -eq 0 ] && redis_answers; then
    redis_ok=1; log "redis ready at 127.0.0.1:$REDIS_PORT"
  fi
  if [ "$kafka_ok" -eq 0 ] && kafka_answers "$KAFKA_PORT"; then
    kafka_ok=1; log "kafka ready at 127.0.0.1:$KAFKA_PORT ($(cut -d' ' -f1 "$LIBS/.version" 2>/dev/null || echo 'version unknown'), after ${SECONDS}s)"
  fi
  [ "$redis_ok" -eq 1 ] && [ "$kafka_ok" -eq 1 ] && break
  if [ "$kafka_ok" -eq 0 ] && [ "$started_kafka" -eq 1 ] && ! live_pid "$KPID" kafka.Kafka >/dev/null; then
    kafka_log_tail; die "the Kafka process exited during startup"
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    [ "$redis_ok" -eq 1 ] || { tail -n 30 "$RDIR/redis.log" >&2 2>/dev/null || true
                               echo "[services-up] redis did not answer within ${WAIT_SECONDS}s" >&2; }
    [ "$kafka_ok" -eq 1 ] || { kafka_log_tail
                               echo "[services-up] kafka did not answer within ${WAIT_SECONDS}s" >&2; }
    exit 1
  fi
  sleep 0.5
done

# ---------------------------------------------------------------- users and secured ports
if [ "$want_redis" -eq 1 ] && [ "$redis_foreign" -eq 1 ]; then
  log "redis TLS port $REDIS_TLS_PORT and ACL user: $foreign_note"
elif [ "$want_redis" -eq 1 ]; then
  # Idempotent: SETUSER resets the user to exactly this.
  out="$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ACL SETUSER "$REDIS_ACL_USER" reset on ">$REDIS_ACL_PASSWORD" '~*' '&*' +@all 2>&1)"
  [ "$out" = "OK" ] || die "redis ACL SETUSER $REDIS_ACL_USER failed: $out"
  if tcp_answers "$REDIS_TLS_PORT"; then
    log "redis TLS at 127.0.0.1:$REDIS_TLS_PORT (CA $TLS/ca.crt), ACL user $REDIS_ACL_USER"
  else
    log "WARNING: nothing listens on the Redis TLS port $REDIS_TLS_PORT: this redis-server was started" \
        "without it; restart it with scripts/services-down.sh redis && scripts/services-up.sh redis"
  fi
fi
if [ "$want_kafka" -eq 1 ] && [ "$kafka_foreign" -eq 1 ]; then
  log "kafka SASL ports $KAFKA_SASL_PORT/$KAFKA_SASL_SSL_PORT and SCRAM user: $foreign_note"
elif [ "$want_kafka" -eq 1 ]; then
  # A data dir formatted before the SCRAM users existed (or with other credentials) gets them now.
  if [ "$(cat "$SCRAM_MARK" 2>/dev/null)" != "$KAFKA_SASL_USER $KAFKA_SASL_PASSWORD" ]; then
    log "adding SCRAM-SHA-256/512 credentials for $KAFKA_SASL_USER"
    # One mechanism per request: Kafka refuses to alter one user's credentials twice in a request.
    for mech in SCRAM-SHA-256 SCRAM-SHA-512; do
      java -cp "$LIBS/*" "${JAVA_LOG_OPTS[@]}" kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
        --alter --entity-type users --entity-name "$KAFKA_SASL_USER" \
        --add-config "$mech=[password=$KAFKA_SASL_PASSWORD]" \
        >"$KLOGS/scram.out" 2>&1 || { cat "$KLOGS/scram.out" >&2; die "ConfigCommand could not add the $mech user"; }
    done
    echo "$KAFKA_SASL_USER $KAFKA_SASL_PASSWORD" >"$SCRAM_MARK"
  fi
  if kafka_answers "$KAFKA_SASL_PORT"; then
    log "kafka SASL_PLAINTEXT at 127.0.0.1:$KAFKA_SASL_PORT, SASL_SSL at 127.0.0.1:$KAFKA_SASL_SSL_PORT (SCRAM-SHA-256/512, PLAIN; user $KAFKA_SASL_USER)"
  else
    log "WARNING: the Kafka SASL port $KAFKA_SASL_PORT does not answer: this broker was started without it;" \
        "restart it with scripts/services-down.sh kafka && scripts/services-up.sh kafka"
  fi
fi
