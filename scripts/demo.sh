#!/usr/bin/env bash
# The whole pipeline end to end: redis-server with the module, a campaign, lottery-writer
# persisting its wins stream and stock drains into SQLite, 50,000 users drawing, and a check
# that every count matches.
#
# Called by `make demo`, which installs the deps, builds the module and the writer, and sets
# MODULE. By hand, from anywhere:
#   MODULE=/path/to/liblottery.so bash scripts/demo.sh
# lottery-exporter serves the live status page and Prometheus metrics meanwhile; the summary
# prints their address and checks the metrics against LOTTERY.STATS.
# Options (environment): DEMO_PORT (default: a free port), DEMO_USERS (default 50000),
# DEMO_THREADS (4), WRITER (path to lottery-writer), EXPORTER (path to lottery-exporter),
# DEMO_HOLD (seconds to keep the server and the status page up after the summary; default 0),
# DEMO_DIR (where everything lives; default <repo>/.run/demo).
#
# Everything lives in DEMO_DIR (wiped at each start). The server, the writer and the exporter are
# stopped on exit, and the server's data removed; the SQLite database and the logs are kept.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODULE="${MODULE:-$ROOT/target/release/liblottery.so}"
PY="${PY:-$ROOT/.venv/bin/python}"
CONF="$ROOT/redis.conf.example"
DEMO_DIR="${DEMO_DIR:-$ROOT/.run/demo}"
DATA_DIR="$DEMO_DIR/redis"
LOG="$DEMO_DIR/redis.log"
PIDFILE="$DEMO_DIR/redis.pid"
WRITER_LOG="$DEMO_DIR/writer.log"
EXPORTER_LOG="$DEMO_DIR/exporter.log"
DB="$DEMO_DIR/wins.db"
STATE="$DEMO_DIR/clients.json"
USERS="${DEMO_USERS:-50000}"
THREADS="${DEMO_THREADS:-4}"
KEY='demo:{spring}'
CONFIGURE=(PRIZE phone 1 20 PRIZE coupon 50 2000 PRIZE points 200 INF NOTHING 749 DAILY 3 MAXWINS 1)

die() {
    echo "demo.sh: $*" >&2
    exit 1
}

section() {
    printf '\n== %s\n' "$*"
}

# ---------------------------------------------------------------- checks

command -v redis-server >/dev/null 2>&1 || die "redis-server is not installed (make deps installs it)"
command -v redis-cli >/dev/null 2>&1 || die "redis-cli is not installed (make deps installs it)"
[ -f "$CONF" ] || die "missing $CONF"
[ -f "$MODULE" ] || die "module not found: $MODULE (build it with: make build)"
MODULE="$(cd "$(dirname "$MODULE")" && pwd)/$(basename "$MODULE")"
[ -x "$PY" ] || die "no Python venv at $PY (make deps creates it)"
"$PY" -c 'import redis' 2>/dev/null || die "redis-py is missing from $PY (make deps installs it)"

if [ -z "${WRITER:-}" ]; then
    for w in "$ROOT/target/release/lottery-writer" "$ROOT/writer/target/release/lottery-writer"; do
        if [ -x "$w" ]; then
            WRITER="$w"
            break
        fi
    done
fi
[ -n "${WRITER:-}" ] && [ -x "$WRITER" ] ||
    die "lottery-writer not found in target/release or writer/target/release (build it with: cd writer && cargo build --release)"
EXPORTER="${EXPORTER:-$ROOT/target/release/lottery-exporter}"
[ -x "$EXPORTER" ] || die "lottery-exporter not found at $EXPORTER (build it with: make build)"
HOLD="${DEMO_HOLD:-0}"
[[ $HOLD =~ ^[0-9]+$ ]] || die "DEMO_HOLD must be a number of seconds, got '$HOLD'"

if [ -n "${DEMO_PORT:-}" ]; then
    PORT="$DEMO_PORT"
    if ! [[ $PORT =~ ^[0-9]+$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
        die "DEMO_PORT must be a TCP port number, got '$PORT'"
    fi
else
    # A port the kernel says is free now (ephemeral range: never `make run`'s 6390).
    PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi
answer="$(timeout 3 redis-cli -h 127.0.0.1 -p "$PORT" PING 2>/dev/null || true)"
[ -z "$answer" ] || die "a server already answers on port $PORT (PING -> $answer); pick another with DEMO_PORT"

cli() {
    redis-cli -h 127.0.0.1 -p "$PORT" "$@"
}

# ---------------------------------------------------------------- clean-up on exit

WRITER_PID=""
EXPORTER_PID=""
SERVER_UP=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$EXPORTER_PID" ]; then
        kill -TERM "$EXPORTER_PID" 2>/dev/null || true
        wait "$EXPORTER_PID" 2>/dev/null || true
    fi
    if [ -n "$WRITER_PID" ] && kill -0 "$WRITER_PID" 2>/dev/null; then
        kill -TERM "$WRITER_PID" 2>/dev/null || true
        wait "$WRITER_PID" 2>/dev/null || true
    fi
    if [ -n "$SERVER_UP" ]; then
        cli SHUTDOWN NOSAVE >/dev/null 2>&1 || true
        for _ in $(seq 1 50); do
            [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -rf "$DATA_DIR"
    if [ -f "$DB" ]; then
        cat <<EOF

The server is stopped; the database stays:  $DB
  sqlite3 $DB 'select stream_id, campaign, cast(user_id as text), prize, ts_ms, draw_seq, cast(reqid as text) from wins limit 5'
  sqlite3 $DB 'select * from stock_drains order by seq limit 10'
Logs: $LOG, $WRITER_LOG, $EXPORTER_LOG
EOF
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- start the server

rm -rf "$DEMO_DIR"
mkdir -p "$DATA_DIR"
T0=$SECONDS

section "Start redis-server on 127.0.0.1:$PORT"
# redis.conf.example's `dir ./.run` is read before --dir and must exist where the server
# starts: start it from the demo's directory, whatever the caller's.
mkdir -p "$DEMO_DIR/.run"
if ! (cd "$DEMO_DIR" && redis-server "$CONF" \
    --port "$PORT" \
    --dir "$DATA_DIR" \
    --logfile "$LOG" \
    --pidfile "$PIDFILE" \
    --daemonize yes \
    --loadmodule "$MODULE"); then
    die "redis-server refused to start (see above)"
fi
SERVER_UP=yes
for _ in $(seq 1 150); do
    answer="$(timeout 2 redis-cli -h 127.0.0.1 -p "$PORT" PING 2>/dev/null || true)"
    [ "$answer" = PONG ] && break
    if [ -s "$PIDFILE" ] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if [ "$answer" != PONG ]; then
    tail -n 20 "$LOG" >&2 || true
    die "redis-server did not come up on port $PORT (log above)"
fi
echo "  pid $(cat "$PIDFILE"), module $MODULE"
echo "  data in $DATA_DIR (removed on exit), log $LOG"

# ---------------------------------------------------------------- the campaign

section "Configure the campaign $KEY"
echo "  LOTTERY.CONFIGURE $KEY ${CONFIGURE[*]}"
out="$(cli LOTTERY.CONFIGURE "$KEY" "${CONFIGURE[@]}")"
[ "$out" = OK ] || die "LOTTERY.CONFIGURE -> $out"
echo "  -> OK. Odds per draw (weights / 1000): phone 0.1% (20 in stock), coupon 5% (2,000),"
echo "  points 20% (unlimited), nothing 74.9%; 3 chances a day, one win per user (MAXWINS 1)."
echo "  With $USERS users the phones and coupons sell out: later picks of them are LOSE."

# ---------------------------------------------------------------- the writer

section "Start lottery-writer (wins stream -> SQLite)"
WRITER_ARGS=(--redis "redis://127.0.0.1:$PORT" --campaign "$KEY" --group writers --consumer w1
    --database "sqlite:$DB" --drain-every-ms 200)
echo "  $(basename "$WRITER") ${WRITER_ARGS[*]}"
"$WRITER" "${WRITER_ARGS[@]}" 2>"$WRITER_LOG" &
WRITER_PID=$!
for _ in $(seq 1 100); do
    grep -q 'event=recovered' "$WRITER_LOG" 2>/dev/null && break
    kill -0 "$WRITER_PID" 2>/dev/null || break
    sleep 0.1
done
if ! grep -q 'event=recovered' "$WRITER_LOG" 2>/dev/null; then
    cat "$WRITER_LOG" >&2
    die "lottery-writer did not start (log above)"
fi
echo "  pid $WRITER_PID, log $WRITER_LOG, database $DB"

# ---------------------------------------------------------------- the exporter

section "Start lottery-exporter (status page and Prometheus metrics)"
EPORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
EXPORTER_URL="http://127.0.0.1:$EPORT/"
EXPORTER_ARGS=(--redis "redis://127.0.0.1:$PORT" --listen "127.0.0.1:$EPORT" --sample-ms 1000)
echo "  $(basename "$EXPORTER") ${EXPORTER_ARGS[*]}"
"$EXPORTER" "${EXPORTER_ARGS[@]}" 2>"$EXPORTER_LOG" &
EXPORTER_PID=$!
up=""
for _ in $(seq 1 100); do
    if "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
        "${EXPORTER_URL}metrics" 2>/dev/null; then
        up=yes
        break
    fi
    kill -0 "$EXPORTER_PID" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$up" ]; then
    cat "$EXPORTER_LOG" >&2
    die "lottery-exporter did not start (log above)"
fi
echo "  pid $EXPORTER_PID, log $EXPORTER_LOG"
echo "  status page $EXPORTER_URL (open it while the users draw), metrics ${EXPORTER_URL}metrics"

# ---------------------------------------------------------------- the draws

section "$USERS users draw (scripts/demo_load.py, redis-py)"
"$PY" "$ROOT/scripts/demo_load.py" draw --port "$PORT" --campaign "$KEY" \
    --users "$USERS" --threads "$THREADS" --state "$STATE" ||
    die "the load failed"

section "Wait until the writer has persisted every win"
"$PY" "$ROOT/scripts/demo_load.py" wait --port "$PORT" --campaign "$KEY" --db "$DB" \
    --writer-pid "$WRITER_PID" --timeout 60 ||
    die "the writer did not persist every win (see $WRITER_LOG)"

section "Stop the writer (SIGTERM: it finishes its batch and records a last drain)"
kill -TERM "$WRITER_PID"
writer_rc=0
wait "$WRITER_PID" || writer_rc=$?
WRITER_PID=""
stopped="$(grep 'event=stopped' "$WRITER_LOG" | tail -n 1 || true)"
echo "  exit code $writer_rc"
echo "  ${stopped#*event=}" | fold -s -w 100 | sed '2,$s/^/    /'
[ "$writer_rc" = 0 ] || die "MISMATCH: lottery-writer exited with $writer_rc, expected 0 (see $WRITER_LOG)"

# ---------------------------------------------------------------- the summary

section "Summary per prize"
status=0
"$PY" "$ROOT/scripts/demo_load.py" report --port "$PORT" --campaign "$KEY" --db "$DB" \
    --state "$STATE" --configure "${CONFIGURE[@]}" || status=$?

section "Status page and metrics (lottery-exporter)"
"$PY" "$ROOT/scripts/demo_load.py" metrics --port "$PORT" --campaign "$KEY" \
    --url "$EXPORTER_URL" || status=1
echo "(demo took $((SECONDS - T0)) s)"
if [ "$HOLD" -gt 0 ]; then
    echo "The server and the status page stay up for $HOLD s (DEMO_HOLD): $EXPORTER_URL; Ctrl-C stops."
    sleep "$HOLD" || true
fi
exit "$status"
