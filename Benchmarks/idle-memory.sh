#!/usr/bin/env bash
# Memory per idle mTLS keep-alive connection: Gatehouse vs nginx, in one run.
#
#   Benchmarks/idle-memory.sh [--connections 5000] [--connect-rate 500] [--settle 3]
#                             [--mode mtls|tls] [--gatehouse PATH | --skip-gatehouse]
#
# For each proxy (nginx, then Gatehouse; both running side by side, same PKI and
# upstream): a short keep-alive warm-up, then RSS of its process tree ("before"),
# then gh-load --hold opens N connections at a bounded rate, each completing the
# (m)TLS handshake and one GET of 1 KiB and then held open and idle; after a settle
# time RSS is read again ("after"). (after - before) / N is the memory per idle
# connection. See Benchmarks/README.md.
#
# All traffic goes to 127.0.0.1. gh-load's hold is bounded (open time + hold
# seconds), every wait here is bounded, and every process started here is stopped
# on exit.
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/common.sh"

N=5000
CONNECT_RATE=500
SETTLE=3
MODE=mtls
LOADGEN_THREADS=1
TARGET_KIB=24

usage() {
    cat <<EOF
usage: $0 [options]
  --connections N      idle connections per proxy (default $N; at most 25000)
  --connect-rate R     new connections per second, at most (default $CONNECT_RATE)
  --settle S           seconds between the last connection opening and the "after" reading (default $SETTLE)
  --mode mtls|tls      mtls (default): client certificate required by both proxies;
                       tls: server-only TLS (runs against a Gatehouse without mTLS support)
  --loadgen-threads N  gh-load event loops (default $LOADGEN_THREADS)
  --workers N          nginx worker_processes (default: cores = $WORKERS)
  --gatehouse PATH     gatehouse binary (default: build .build/release/gatehouse)
  --skip-gatehouse     nginx only
  --keep               keep the temporary directory (configs, logs)
EOF
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --connections) N=$2; shift 2 ;;
        --connect-rate) CONNECT_RATE=$2; shift 2 ;;
        --settle) SETTLE=$2; shift 2 ;;
        --mode) MODE=$2; shift 2 ;;
        --loadgen-threads) LOADGEN_THREADS=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        --gatehouse) GATEHOUSE=$2; shift 2 ;;
        --skip-gatehouse) SKIP_GATEHOUSE=1; shift ;;
        --keep) KEEP_TMP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
for n in "$N" "$CONNECT_RATE" "$SETTLE" "$LOADGEN_THREADS" "$WORKERS"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "expected a positive integer, got '$n'" >&2; exit 2; }
done
(( N <= 25000 )) || { echo "--connections: at most 25000 (loopback source ports)" >&2; exit 2; }
[[ $MODE == mtls || $MODE == tls ]] || { echo "--mode must be mtls or tls" >&2; exit 2; }

# Time budget. gh-load gives each connection OPEN_TIMEOUT s from its scheduled start, so
# opening ends by N/R + OPEN_TIMEOUT; it then holds HOLD s (the "after" reading is taken
# SETTLE s into the hold) and closes. The proxies' idle timeouts must outlast all of it.
OPEN_TIMEOUT=15
OPEN_SECONDS=$(( (N + CONNECT_RATE - 1) / CONNECT_RATE ))
HOLD=$(( SETTLE + 5 ))
IDLE_TIMEOUT=$(( OPEN_SECONDS + OPEN_TIMEOUT + HOLD + 60 ))
(( IDLE_TIMEOUT >= 300 )) || IDLE_TIMEOUT=300

# File descriptors: the client holds N sockets; each proxy N client sockets plus its
# upstream pool, logs and listeners. Raise the limit for this shell and its children.
NOFILE=$(( 2 * N + 4096 ))
(( NOFILE >= 65536 )) || NOFILE=65536
if (( $(ulimit -n) < NOFILE )); then
    if [[ $(ulimit -Hn) != unlimited ]] && (( $(ulimit -Hn) < NOFILE )); then
        ulimit -Hn "$NOFILE" 2>/dev/null || true
    fi
    ulimit -n "$NOFILE" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
(( $(ulimit -n) >= N + 1024 )) || die "open-file limit $(ulimit -n) is too low for $N connections (need root, or ulimit -Hn $NOFILE)"

bench_init   # traps, tools, gh-load, $TMP with the PKI and the 1 KiB body
read -r UPSTREAM_PORT NGINX_PORT GATEHOUSE_PORT GATEHOUSE_ADMIN_PORT <<<"$(free_ports 4)"

# Both proxies: client certificates (mode mtls) and room for N idle connections.
[[ $MODE == mtls ]] && use_mtls
# nginx: each worker may end up with every connection (accept is not balanced), and a
# worker_connections slot is also taken by each upstream connection.
NGINX_WORKER_CONNECTIONS=$(( N + 2048 ))
NGINX_MAIN_EXTRA="worker_rlimit_nofile $NOFILE;"
NGINX_KEEPALIVE_TIMEOUT="${IDLE_TIMEOUT}s"
gatehouse_listener_extra="    max_connections: $(( N + 1024 ))
    timeouts:
      idle: ${IDLE_TIMEOUT}s"

CLIENT_ARGS=(--ca "$TMP/pki/ca.pem")
[[ $MODE == mtls ]] && CLIENT_ARGS+=(--cert "$TMP/pki/client.pem" --key "$TMP/pki/client.key")
declare -A URL PORT
URL[nginx]="https://127.0.0.1:$NGINX_PORT/1k.bin"; PORT[nginx]=$NGINX_PORT
URL[gatehouse]="https://127.0.0.1:$GATEHOUSE_PORT/1k.bin"; PORT[gatehouse]=$GATEHOUSE_PORT

log "idle memory: $N idle $MODE keep-alive connections per proxy at <= $CONNECT_RATE/s; open-file limit $(ulimit -n); idle timeouts ${IDLE_TIMEOUT}s"
log "temp dir $TMP; ports upstream=$UPSTREAM_PORT nginx=$NGINX_PORT gatehouse=$GATEHOUSE_PORT admin=$GATEHOUSE_ADMIN_PORT"
start_upstream
ACTIVE=()
SKIPPED_NOTES=()
for peer in nginx gatehouse; do
    if "start_$peer"; then
        ACTIVE+=("$peer")
    else
        reason="failed to start"
        [[ $peer == gatehouse ]] && reason=$GATEHOUSE_SKIP_REASON
        SKIPPED_NOTES+=("$peer SKIPPED: $reason")
        log "*** $peer SKIPPED: $reason"
        [[ $peer == gatehouse ]] && show_gatehouse_output
    fi
done
[[ ${#ACTIVE[@]} -gt 0 ]] || die "no proxy could start"

STAMP=$(date +%Y%m%d-%H%M%S)
OUT="$BENCH_DIR/results/$STAMP-idle-memory"
mkdir -p "$OUT"
{
    echo "date: $(date -Is)"
    echo "idle memory: connections=$N connect_rate=$CONNECT_RATE settle=$SETTLE mode=$MODE loadgen_threads=$LOADGEN_THREADS nginx_workers=$WORKERS"
    echo "open-file limit: $(ulimit -n); idle timeouts: ${IDLE_TIMEOUT}s; nginx worker_connections: $NGINX_WORKER_CONNECTIONS"
    echo "kernel: $(uname -sr); cpus: $(nproc); model: $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
    echo "nginx: $("$NGINX" -v 2>&1)"
    echo "openssl: $(openssl version)"
    echo "gatehouse: ${GATEHOUSE:-none} ${GATEHOUSE_SKIP_REASON:+(skipped: $GATEHOUSE_SKIP_REASON)}"
    echo "git: $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "active proxies: ${ACTIVE[*]}"
    for n in "${SKIPPED_NOTES[@]}"; do echo "$n"; done
} >"$OUT/env.txt"
cp "$TMP/nginx-proxy/nginx.conf" "$OUT/nginx-proxy.conf" 2>/dev/null || true
cp "$TMP/gatehouse/gatehouse.yaml" "$OUT/gatehouse.yaml" 2>/dev/null || true

json_field() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" <<<"$1"; }   # line key -> value

measure() { # peer -> appends one JSON object to $OUT/results.jsonl
    local peer=$1 pid=${PEER_PID[$1]} url=${URL[$1]} port=${PORT[$1]}
    local out="$OUT/gh-load-$peer.out" err="$OUT/gh-load-$peer.stderr"

    # Warm-up: one second of keep-alive load, so that what every running proxy has
    # (TLS context, upstream pool, thread caches, log buffers) is in the baseline.
    "$GH_LOAD" --url "$url" "${CLIENT_ARGS[@]}" --connections 16 --duration 1 >>"$err" 2>&1 \
        || die "$peer: warm-up failed (see $err)"
    sleep 1
    local before before_fds
    before=$(tree_rss_kib "$pid"); before_fds=$(tree_fd_count "$pid")

    log "$peer: RSS before ${before} KiB; opening $N connections"
    spawn "$GH_LOAD" --url "$url" "${CLIENT_ARGS[@]}" --connections "$N" --connect-rate "$CONNECT_RATE" \
        --open-timeout "$OPEN_TIMEOUT" --hold "$HOLD" --threads "$LOADGEN_THREADS" >"$out" 2>>"$err"
    local loader=$SPAWNED_PID ready=""
    for _ in $(seq 1 $(( (OPEN_SECONDS + OPEN_TIMEOUT + 30) * 10 ))); do
        ready=$(grep -m1 '"phase":"ready"' "$out" 2>/dev/null || true)
        [[ -n "$ready" ]] && break
        kill -0 "$loader" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n "$ready" ]] || { stop_group "$loader"; die "$peer: gh-load did not report its connections open (see $err)"; }
    sleep "$SETTLE"
    local after after_fds established
    after=$(tree_rss_kib "$pid"); after_fds=$(tree_fd_count "$pid"); established=$(established_on_port "$port")
    local per_proc
    per_proc=$(for p in $(tree_pids "$pid"); do printf '%s:%s ' "$p" "$(proc_status_kib "$p" VmRSS)"; done)

    # gh-load ends by itself after the hold; bounded wait, then it is stopped.
    for _ in $(seq 1 $(( (HOLD + 30) * 10 ))); do kill -0 "$loader" 2>/dev/null || break; sleep 0.1; done
    stop_group "$loader"
    local done_line closed_by_peer
    done_line=$(grep -m1 '"phase":"done"' "$out" 2>/dev/null || true)
    closed_by_peer=$(json_field "$done_line" closed_by_peer)
    sleep 1
    local after_close
    after_close=$(tree_rss_kib "$pid")

    local open errors
    open=$(json_field "$ready" open); errors=$(json_field "$ready" errors)
    log "$peer: $ready"
    log "$peer: RSS after ${after} KiB with $established established on :$port (fds $before_fds -> $after_fds; per process $per_proc); after closing ${after_close} KiB; closed by the server during the hold: ${closed_by_peer:-?}"
    printf '{"peer":"%s","mode":"%s","connections":%s,"open":%s,"errors":%s,"established":%s,"closed_by_peer":%s,"rss_before_kib":%s,"rss_after_kib":%s,"rss_after_close_kib":%s,"fds_before":%s,"fds_after":%s,"open_seconds":%s,"open_p50_us":%s,"open_p99_us":%s}\n' \
        "$peer" "$MODE" "$N" "${open:-0}" "${errors:-0}" "$established" "${closed_by_peer:-null}" \
        "$before" "$after" "$after_close" "$before_fds" "$after_fds" \
        "$(json_field "$ready" open_seconds)" "$(json_field "$ready" open_p50_us)" "$(json_field "$ready" open_p99_us)" \
        >>"$OUT/results.jsonl"
}

for peer in "${ACTIVE[@]}"; do measure "$peer"; done
cp "$TMP/gatehouse/stderr.log" "$OUT/gatehouse.stderr.log" 2>/dev/null || true

python3 - "$OUT/results.jsonl" "$TARGET_KIB" "${SKIPPED_NOTES[@]}" >"$OUT/summary.txt" <<'EOF'
import json, sys
path, target, skipped = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
rows = [json.loads(l) for l in open(path) if l.strip()]
per = {}
print(f"idle {rows[0]['mode']} keep-alive connections: {rows[0]['connections']} per proxy, each after its handshake and one request")
hdr = f"{'proxy':<11}{'open':>7}{'errors':>8}{'estab.':>8}{'RSS before KiB':>16}{'RSS after KiB':>15}{'delta KiB':>11}{'KiB/conn':>10}{'after close KiB':>17}"
print(hdr); print("-" * len(hdr))
for r in rows:
    # Divide by the connections the proxy actually held (its established sockets), not by the request.
    held = min(r["open"], r["established"])
    delta = r["rss_after_kib"] - r["rss_before_kib"]
    per[r["peer"]] = delta / held if held else None
    kib = "-" if per[r["peer"]] is None else f"{per[r['peer']]:.1f}"
    print(f"{r['peer']:<11}{r['open']:>7}{r['errors']:>8}{r['established']:>8}{r['rss_before_kib']:>16,}{r['rss_after_kib']:>15,}{delta:>11,}{kib:>10}{r['rss_after_close_kib']:>17,}")
print("RSS: VmRSS summed over the proxy's process tree (/proc); KiB/conn = delta / connections held")
for r in rows:
    notes = []
    if r["errors"]: notes.append(f"{r['errors']} connection(s) failed to open")
    if r["established"] != r["open"]: notes.append(f"{r['established']} established on the server port vs {r['open']} open in gh-load")
    if r["closed_by_peer"]: notes.append(f"the server closed {r['closed_by_peer']} during the hold")
    if notes: print(f"!!! {r['peer']}: " + "; ".join(notes))
print()
g, n = per.get("gatehouse"), per.get("nginx")
if g is not None and n:
    print(f"gatehouse / nginx: memory per idle connection {g / n:.2f}x  (lower is better)")
else:
    print("gatehouse / nginx ratio: n/a (gatehouse not in this run)")
what = f"target: gatehouse <= {target:.0f} KiB per idle connection"
if g is None:
    print(f"{what}: NOT MEASURED (gatehouse not in this run)")
else:
    print(f"{what}: {g:.1f} KiB, {'MET' if g <= target else 'NOT MET'}")
for s in skipped:
    print(f"*** {s}")
EOF
echo
cat "$OUT/summary.txt"
echo
echo "raw: $OUT/results.jsonl; summary: $OUT/summary.txt; gh-load output: $OUT/gh-load-*.out; environment: $OUT/env.txt"
