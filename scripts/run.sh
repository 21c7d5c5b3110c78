#!/usr/bin/env bash
# Start redis-server with the lottery module loaded and show it drawing.
#
# Called by `make run`, which builds the module first and sets PORT and MODULE. By hand, from
# anywhere:
#   PORT=6390 MODULE=/path/to/liblottery.so bash scripts/run.sh
#
# The server runs in the background (data, log and pid file in <repo>/.run) until `make stop`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${PORT:-6390}"
MODULE="${MODULE:-$ROOT/target/release/liblottery.so}"
CONF="$ROOT/redis.conf.example"
RUN_DIR="$ROOT/.run"
LOG="$RUN_DIR/redis.log"
PIDFILE="$RUN_DIR/redis.pid"
KEY='demo:{spring}'
WINS='demo:{spring}:wins'

if [ "$PORT" = 6390 ]; then STOP="make stop"; else STOP="make stop PORT=$PORT"; fi

die() {
    echo "run.sh: $*" >&2
    exit 1
}

# ---------------------------------------------------------------- checks

command -v redis-server >/dev/null 2>&1 || die "redis-server is not installed (make deps installs it)"
command -v redis-cli >/dev/null 2>&1 || die "redis-cli is not installed (make deps installs it)"
[ -f "$CONF" ] || die "missing $CONF"
[ -f "$MODULE" ] || die "module not found: $MODULE (build it with: make build)"
# Redis loads modules after changing into its `dir`, so the path must be absolute.
MODULE="$(cd "$(dirname "$MODULE")" && pwd)/$(basename "$MODULE")"

if ! [[ $PORT =~ ^[0-9]+$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
    die "PORT must be a TCP port number, got '$PORT'"
fi

cli() {
    redis-cli -h 127.0.0.1 -p "$PORT" "$@"
}

answer="$(timeout 3 redis-cli -h 127.0.0.1 -p "$PORT" PING 2>/dev/null || true)"
if [ -n "$answer" ]; then
    {
        echo "run.sh: a server already answers on port $PORT (PING -> $answer)."
        echo "  If it is the one \`make run\` started, stop it first:  $STOP"
        echo "  Or run on another port:                             make run PORT=$((PORT + 1))"
    } >&2
    exit 1
fi

# ---------------------------------------------------------------- start

mkdir -p "$RUN_DIR"
cd "$ROOT"
log_start=0
[ -f "$LOG" ] && log_start="$(wc -l <"$LOG")"
rm -f "$PIDFILE"

echo "Starting redis-server on 127.0.0.1:$PORT with $MODULE"
# The conf's own loadmodule line is commented out: the module is loaded once, here.
if ! redis-server "$CONF" \
    --port "$PORT" \
    --dir "$RUN_DIR" \
    --logfile "$LOG" \
    --pidfile "$PIDFILE" \
    --daemonize yes \
    --loadmodule "$MODULE"; then
    die "redis-server refused to start (see above)"
fi

show_log() {
    if [ -f "$LOG" ]; then
        echo "--- $LOG (this start) ---" >&2
        tail -n +"$((log_start + 1))" "$LOG" | tail -n 20 >&2
    fi
}

# Wait for PONG (Redis answers LOADING while it reads the AOF/RDB), at most ~15 s.
ready=""
for _ in $(seq 1 150); do
    answer="$(timeout 2 redis-cli -h 127.0.0.1 -p "$PORT" PING 2>/dev/null || true)"
    if [ "$answer" = PONG ]; then
        ready=yes
        break
    fi
    if [ -s "$PIDFILE" ] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        break # the server started and died (e.g. the module failed to load)
    fi
    sleep 0.1
done
if [ -z "$ready" ]; then
    show_log
    die "redis-server did not come up on port $PORT (log above)"
fi
echo "Up: pid $(cat "$PIDFILE" 2>/dev/null || echo '?'), data and log in $RUN_DIR"

# ---------------------------------------------------------------- helpers

# call CMD ARGS...: runs one command and prints redis-cli's raw reply (one value per line,
# nested arrays flattened, nil as an empty line). An error reply stops the demo.
call() {
    local out
    out="$(cli "$@")" || die "redis-cli failed on: $*"
    if [[ $out =~ ^(ERR|WRONGTYPE|NOPERM|NOAUTH|LOADING|MISCONF|OOM|BUSY|READONLY)( |$) ]]; then
        die "$* -> $out"
    fi
    printf '%s\n' "$out"
}

# human_ms MS: "now", "850 ms", "4s", "2h 05m 10s", ...
human_ms() {
    local ms="$1"
    if ! [[ $ms =~ ^-?[0-9]+$ ]]; then
        printf '%s' "$ms"
    elif [ "$ms" -lt 0 ]; then
        printf 'only after a grant'
    elif [ "$ms" -eq 0 ]; then
        printf 'now'
    elif [ "$ms" -lt 1000 ]; then
        printf '%s ms' "$ms"
    else
        local s=$((ms / 1000))
        if [ "$s" -ge 3600 ]; then
            printf '%dh %02dm %02ds' $((s / 3600)) $((s % 3600 / 60)) $((s % 60))
        elif [ "$s" -ge 60 ]; then
            printf '%dm %02ds' $((s / 60)) $((s % 60))
        else
            printf '%ds' "$s"
        fi
    fi
}

# draw USER [REQID id] [NOTE]: one LOTTERY.DRAW, printed on one line.
draw() {
    local user="$1" note=""
    shift
    local -a args=()
    if [ "${1:-}" = REQID ]; then
        args=(REQID "$2")
        shift 2
    fi
    note="${1:-}"
    local out
    out="$(call LOTTERY.DRAW "$KEY" "$user" "${args[@]}")"
    local -a r
    mapfile -t r <<<"$out"
    local outcome="${r[0]:-?}" prize="${r[1]:-}" winid="${r[2]:-}" left="${r[3]:-?}" wait="${r[4]:-?}"
    local what="$outcome"
    if [ "$outcome" = WIN ]; then
        what="WIN $prize (win id $winid)"
    fi
    if [ "$left" = -1 ]; then left=unlimited; fi
    printf '  %-6s %-18s -> %-40s chances left: %-3s next draw: %s%s\n' \
        "$user" "${args[*]:-}" "$what" "$left" "$(human_ms "$wait")" "${note:+   <- $note}"
}

# pairs: reads field/value lines on stdin, prints them in aligned columns (nil shown as -).
pairs() {
    local field value
    while IFS= read -r field && IFS= read -r value; do
        printf '    %-18s %s\n' "$field" "${value:--}"
    done
}

section() {
    printf '\n== %s\n' "$*"
}

# ---------------------------------------------------------------- demo

section "Configure the campaign $KEY"
# The AOF in .run keeps data across restarts: start the demo from scratch.
cli DEL "$KEY" "$WINS" >/dev/null
echo "  LOTTERY.CONFIGURE $KEY PRIZE phone 1 3 PRIZE coupon 20 50 PRIZE points 100 INF NOTHING 879 DAILY 3 COOLDOWN 0"
echo "  -> $(call LOTTERY.CONFIGURE "$KEY" \
    PRIZE phone 1 3 \
    PRIZE coupon 20 50 \
    PRIZE points 100 INF \
    NOTHING 879 \
    DAILY 3 COOLDOWN 0)"
echo "  Odds per draw (weights / 1000): phone 0.1% (3 in stock), coupon 2% (50), points 10% (unlimited), nothing 87.9%."
echo "  Each user has 3 chances a day and may win once (MAXWINS 1, the default)."

section "Ten draws by three users"
echo "  (after a win a user gets ALREADY_WON; the 4th draw of a day gets QUOTA until the next day)"
for _ in 1 2 3 4; do draw alice; done
for _ in 1 2 3; do draw bob; done
for _ in 1 2 3; do draw carol; done

section "A retry with REQID gets the first reply again and consumes nothing"
draw dave REQID order-1001 "first try"
draw dave REQID order-1001 "client retried (e.g. after a timeout): same reply"

section "LOTTERY.USER $KEY dave"
call LOTTERY.USER "$KEY" dave | pairs
echo "  (draws_today is 1: the retry consumed nothing)"

section "1000 more users draw once each (commands piped into redis-cli)"
for i in $(seq -w 1 1000); do
    printf 'LOTTERY.DRAW %s fan:%s\n' "$KEY" "$i"
done | cli >/dev/null
echo "  done"

section "LOTTERY.STATS $KEY"
out="$(call LOTTERY.STATS "$KEY")"
mapfile -t s <<<"$out"
i=0
while [ "$i" -lt "${#s[@]}" ] && [ "${s[$i]}" != prizes ]; do
    printf '    %-22s %s\n' "${s[$i]}" "${s[$((i + 1))]:--}"
    i=$((i + 2))
done
if [ "$i" -lt "${#s[@]}" ]; then
    printf '    prizes:\n      %-10s %8s %8s %8s\n' id weight stock sold
    i=$((i + 1))
    while [ $((i + 3)) -lt "${#s[@]}" ]; do
        stock="${s[$((i + 2))]}"
        if [ "$stock" = -1 ]; then stock=INF; fi
        printf '      %-10s %8s %8s %8s\n' "${s[$i]}" "${s[$((i + 1))]}" "$stock" "${s[$((i + 3))]}"
        i=$((i + 4))
    done
fi

section "The wins stream $WINS (first 5 of $(call XLEN "$WINS") entries)"
echo "  XRANGE $WINS - + COUNT 5"
out="$(call XRANGE "$WINS" - + COUNT 5)"
mapfile -t x <<<"$out"
# Raw replies are flat: id, field, value, field, value, ..., next id, ...
line=""
want=field
for v in "${x[@]}"; do
    if [ "$want" = value ]; then
        line+="$v  "
        want=field
    elif [[ $v =~ ^[0-9]+-[0-9]+$ ]]; then
        if [ -n "$line" ]; then echo "$line"; fi
        line="    $v   "
    elif [ -n "$v" ]; then
        line+="$v="
        want=value
    fi
done
if [ -n "$line" ]; then echo "$line"; else echo "    (no wins yet)"; fi
echo "  Writers consume it with XGROUP CREATE / XREADGROUP / XACK (see docs/semantics.md)."

section "LOTTERY.DRAIN $KEY: prizes sold since the last drain, for your stock database"
out="$(call LOTTERY.DRAIN "$KEY")"
mapfile -t d <<<"$out"
# Raw reply: seq, then prize-id, count, ... (an empty batch is an empty line).
batch=""
j=1
while [ "$j" -lt "${#d[@]}" ]; do
    if [ -n "${d[$j]}" ]; then
        batch+=" ${d[$j]} ${d[$((j + 1))]:-?}"
        j=$((j + 2))
    else
        j=$((j + 1))
    fi
done
echo "    batch seq ${d[0]:-?}:${batch:- nothing sold}"
echo "  (LOTTERY.DRAIN $KEY LAST returns the same batch again, for a writer that crashed)"

cat <<EOF

== Try it
  redis-cli -p $PORT
  127.0.0.1:$PORT> LOTTERY.DRAW $KEY you
  127.0.0.1:$PORT> LOTTERY.DRAW $KEY you REQID req-42
  127.0.0.1:$PORT> LOTTERY.GRANT $KEY you 2 CAP 5
  127.0.0.1:$PORT> LOTTERY.USER $KEY you
  127.0.0.1:$PORT> LOTTERY.CONFIGURE $KEY COOLDOWN 10000 SOLDOUT REDRAW
  127.0.0.1:$PORT> LOTTERY.STATS $KEY
  127.0.0.1:$PORT> XRANGE $WINS - + COUNT 10

The server keeps running in the background (log: $LOG).
Stop it with:  $STOP
EOF
