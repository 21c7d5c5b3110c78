#!/usr/bin/env bash
# Runs the python-tests once per server of the matrix: `make pytest` calls it.
#
#   scripts/test-servers.sh [NAME...]        default: every server of scripts/servers.sh list
#
# Each server gets its suite (below): the whole suite on Redis 7.0.15 and Valkey 9.1.2, the
# subset on the others. PYTEST_ARGS adds arguments to every run (e.g. -x, -k name). Every run
# happens, a failure does not stop the next; the script fails if any run did, after a table of
# results and times.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
export LOTTERY_MODULE="${LOTTERY_MODULE:-$ROOT/target/release/liblottery.so}"

# Every command (admin, configure, draw, rules, campaign rules, flow, transfer, trust, ops,
# errors), persistence
# (less the largest round-trip states, marked slow), replication and the cluster.
SUBSET=(
    python-tests/test_admin.py python-tests/test_configure.py python-tests/test_draw.py
    python-tests/test_rules.py python-tests/test_campaign_rules.py python-tests/test_errors.py
    python-tests/test_flow.py
    python-tests/test_transfer.py python-tests/test_trust.py python-tests/test_ops.py
    python-tests/persistence python-tests/replication python-tests/test_cluster.py
    python-tests/test_slot_migration.py
    -m "not slow"
)

suite_of() {
    case "$1" in
    redis-7.0.15 | valkey-9.1.2) echo full ;;
    *) echo subset ;;
    esac
}

if [ $# -eq 0 ]; then
    mapfile -t SERVERS < <(bash scripts/servers.sh list)
else
    SERVERS=("$@")
fi

declare -a SUMMARY
failed=0
for s in "${SERVERS[@]}"; do
    envline="$(bash scripts/servers.sh env "$s")" || exit 2
    suite="$(suite_of "$s")"
    if [ "$suite" = full ]; then args=(python-tests); else args=("${SUBSET[@]}"); fi
    echo "=== $s ($suite suite): $envline"
    start=$(date +%s)
    # shellcheck disable=SC2086
    env $envline "$PY" -m pytest -q -p no:cacheprovider "${args[@]}" ${PYTEST_ARGS:-}
    rc=$?
    secs=$(($(date +%s) - start))
    if [ $rc -eq 0 ]; then res=passed; else res="FAILED (pytest exit $rc)"; failed=1; fi
    SUMMARY+=("$(printf '%-14s %-7s %5ds  %s' "$s" "$suite" "$secs" "$res")")
done

echo
echo "server matrix:"
printf '  %s\n' "${SUMMARY[@]}"
exit $failed
