#!/usr/bin/env bash
# Counts Swift reference-count operations (swift_retain, swift_release) per proxied request of
# a running Gatehouse, with perf uprobes on libswiftCore. Unlike CPU time on this shared
# machine, the count is the same from run to run, so it shows a change of a few percent that a
# timed A/B cannot (every retain or release is an atomic instruction; one on an object that
# another event loop touches too costs a cache-line transfer).
#
#   Benchmarks/tools/arc-count.sh [--scenario token-repeated] [--gatehouse PATH] [--callers N]
#
# Runs one round of the scenario through run.sh, attaches to the gatehouse process for 2 s
# and prints retains and releases per request (requests counted as read(2) calls / 2: one
# read of the request, one of the upstream's response). With --callers N it records call
# stacks for 1 s instead and lists the N functions that retain and release the most, per
# request. Needs root and perf (Debian: linux-perf). The uprobes slow the process down about
# tenfold while attached: counts only, never times. Loopback only, bounded by run.sh.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCENARIO=token-repeated
GATEHOUSE=""
CALLERS=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --scenario) SCENARIO=$2; shift 2 ;;
        --gatehouse) GATEHOUSE=$2; shift 2 ;;
        --callers) CALLERS=$2; shift 2 ;;
        *) echo "usage: $0 [--scenario NAME] [--gatehouse PATH] [--callers N]" >&2; exit 2 ;;
    esac
done
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 1; }

LIBSWIFTCORE=$(ldd "${GATEHOUSE:-$BENCH_DIR/../.build/release/gatehouse}" 2>/dev/null | awk '/libswiftCore/ {print $3}')
[[ -n "$LIBSWIFTCORE" ]] || LIBSWIFTCORE=$(find / -name libswiftCore.so -path '*linux*' 2>/dev/null | head -1)
for symbol in swift_retain swift_release; do
    perf probe -l 2>/dev/null | grep -q "probe_libswiftCore:$symbol " || perf probe -q -x "$LIBSWIFTCORE" "$symbol" >/dev/null
done

WORK=$(mktemp -d /tmp/arc-count.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
"$BENCH_DIR/run.sh" --scenario "$SCENARIO" --peers gatehouse ${GATEHOUSE:+--gatehouse "$GATEHOUSE"} \
    --rounds 1 --seconds 10 --warmup 1 >"$WORK/run.log" 2>&1 &
RUN=$!
for _ in $(seq 1 120); do grep -q 'warm-up' "$WORK/run.log" 2>/dev/null && break; sleep 0.5; done
sleep 4
PID=$(pgrep -f 'serve --config .*gatehouse/gatehouse.yaml' | head -1)
[[ -n "$PID" ]] || { echo "no gatehouse process found; run.sh said:" >&2; tail -20 "$WORK/run.log" >&2; exit 1; }

if [[ "$CALLERS" -gt 0 ]]; then
    perf record -q -g -e probe_libswiftCore:swift_retain -e probe_libswiftCore:swift_release \
        -e syscalls:sys_enter_read -p "$PID" -o "$WORK/perf.data" -- sleep 1 2>/dev/null
    perf script -i "$WORK/perf.data" 2>/dev/null | python3 -c '
import collections, re, sys
runtime = re.compile(r"libswiftCore|swift_|swift::|libc\.so|\[unknown\]")
counts, reads, stack = collections.Counter(), 0, []
def done(stack):
    global reads
    if not stack: return
    if "sys_enter_read" in stack[0]: reads += 1; return
    kind = "retain" if "swift_retain" in stack[0] else "release"
    for line in stack[1:]:
        symbol = line.split(" ", 2)[1].split("+0x")[0] if " " in line else line
        if not runtime.search(symbol):
            counts[(kind, symbol)] += 1; return
for line in sys.stdin:
    line = line.strip()
    if line: stack.append(line)
    else: done(stack); stack = []
done(stack)
requests = max(reads / 2, 1)
by_symbol = collections.Counter()
for (kind, symbol), n in counts.items(): by_symbol[symbol] += n
print(f"~{requests:.0f} requests sampled")
for symbol, n in by_symbol.most_common(int(sys.argv[1])):
    retains, releases = counts[("retain", symbol)] / requests, counts[("release", symbol)] / requests
    print(f"{n / requests:7.2f}/req  (retain {retains:6.2f}, release {releases:6.2f})  {symbol[:150]}")
' "$CALLERS"
else
    perf stat -x, -e probe_libswiftCore:swift_retain -e probe_libswiftCore:swift_release \
        -e syscalls:sys_enter_read -p "$PID" -- sleep 2 2>"$WORK/stat.csv" || true
    awk -F, '/swift_retain/ {r = $1} /swift_release/ {l = $1} /sys_enter_read/ {q = $1 / 2}
        END { if (q < 1) { print "no requests seen" > "/dev/stderr"; exit 1 }
              printf "%d requests: %.1f retains and %.1f releases per request\n", q, r / q, l / q }' "$WORK/stat.csv"
fi
wait "$RUN" || true
