#!/usr/bin/env bash
# Gatehouse vs nginx benchmark harness.
#
#   Benchmarks/run.sh [--rounds 5] [--seconds 10] [--connections 32]
#                     [--gatehouse PATH | --skip-gatehouse] [--scenario tls-keepalive]
#
# Drives closed-loop keep-alive HTTPS GETs of a 1 KiB body through Gatehouse,
# through nginx configured equivalently (TLS termination, upstream keep-alive)
# and directly to the plaintext upstream, interleaving the peers round by round,
# and prints requests/s, p50/p99 latency and proxy CPU time per request (from
# /proc) with the Gatehouse/nginx ratios. See Benchmarks/README.md.
#
# All traffic goes to 127.0.0.1. Every load run is bounded by gh-load's
# --duration and --max-requests; every process started here is stopped on exit.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)

ROUNDS=5
SECONDS_PER_RUN=10
CONNECTIONS=32
WARMUP=1
LOADGEN_THREADS=1
SCENARIO=tls-keepalive
GATEHOUSE=""
SKIP_GATEHOUSE=0
KEEP_TMP=0
MAX_REQUESTS=10000000
WORKERS=$(nproc 2>/dev/null || echo 2)
UPSTREAM_WORKERS=1

usage() {
    cat <<EOF
usage: $0 [options]
  --rounds N           rounds; every peer runs once per round (default $ROUNDS)
  --seconds S          measured seconds per run (default $SECONDS_PER_RUN)
  --connections N      concurrent keep-alive connections (default $CONNECTIONS)
  --warmup S           unmeasured warm-up run before each measured run (default $WARMUP)
  --loadgen-threads N  gh-load event loops (default $LOADGEN_THREADS)
  --max-requests N     per-run request cap (default $MAX_REQUESTS)
  --workers N          nginx worker_processes for the proxy (default: cores = $WORKERS)
  --scenario NAME      $(list_scenarios | tr '\n' ' ')(default $SCENARIO)
  --gatehouse PATH     gatehouse binary (default: build .build/release/gatehouse)
  --skip-gatehouse     run only nginx and direct
  --keep               keep the temporary directory (configs, logs)
EOF
}

# ---------------------------------------------------------------------------
# Scenarios. A scenario sets:
#   SCENARIO_DESC        one line for the report
#   SCENARIO_PEERS       peers that take part, from: direct nginx gatehouse
#                        (add a peer by writing start_<peer>, see "Peers" below)
#   LOADGEN_ARGS         gh-load arguments common to every peer
#   peer_url[PEER]       URL gh-load drives for that peer
#   peer_args[PEER]      extra gh-load arguments for that peer (e.g. trust, client cert)
#   NGINX_PROXY_EXTRA    lines added to the nginx proxy's server {} block
# It runs after the PKI, the ports and the 1 KiB file exist ($TMP, *_PORT).
# ---------------------------------------------------------------------------
list_scenarios() { declare -F | awk '{print $3}' | sed -n 's/^scenario_//p' | tr '_' '-'; }

scenario_tls_keepalive() {
    SCENARIO_DESC="keep-alive HTTPS GET of a 1 KiB body; $CONNECTIONS connections, one request in flight each"
    SCENARIO_PEERS=(direct nginx gatehouse)
    LOADGEN_ARGS=(--connections "$CONNECTIONS" --threads "$LOADGEN_THREADS" --max-requests "$MAX_REQUESTS")
    peer_url[direct]="http://127.0.0.1:$UPSTREAM_PORT/1k.bin"
    peer_args[direct]=""
    peer_url[nginx]="https://127.0.0.1:$NGINX_PORT/1k.bin"
    peer_args[nginx]="--ca $TMP/pki/ca.pem"
    peer_url[gatehouse]="https://127.0.0.1:$GATEHOUSE_PORT/1k.bin"
    peer_args[gatehouse]="--ca $TMP/pki/ca.pem"
    NGINX_PROXY_EXTRA=""
}

# A full TLS handshake per request (gh-load --new-connection): handshake rate.
scenario_tls_handshake() {
    scenario_tls_keepalive
    SCENARIO_DESC="a new TLS connection per request (full handshake, no resumption); $CONNECTIONS concurrent"
    LOADGEN_ARGS+=(--new-connection)
}

# Client certificates. nginx verifies them against the throwaway CA; Gatehouse
# joins once its listener config has client-certificate settings: add it to
# SCENARIO_PEERS and its YAML to gatehouse_listener_tls_extra below.
scenario_mtls_keepalive() {
    scenario_tls_keepalive
    SCENARIO_DESC="keep-alive HTTPS GET of a 1 KiB body with a client certificate (mTLS)"
    SCENARIO_PEERS=(direct nginx)
    local client="--cert $TMP/pki/client.pem --key $TMP/pki/client.key"
    peer_args[nginx]+=" $client"
    peer_args[gatehouse]+=" $client"
    NGINX_PROXY_EXTRA="ssl_client_certificate $TMP/pki/ca.pem; ssl_verify_client on;"
}

# YAML lines appended under the Gatehouse listener's tls: (empty unless a scenario sets it).
gatehouse_listener_tls_extra=""

# ---------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --loadgen-threads) LOADGEN_THREADS=$2; shift 2 ;;
        --max-requests) MAX_REQUESTS=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        --scenario) SCENARIO=$2; shift 2 ;;
        --gatehouse) GATEHOUSE=$2; shift 2 ;;
        --skip-gatehouse) SKIP_GATEHOUSE=1; shift ;;
        --keep) KEEP_TMP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
SCENARIO_FN="scenario_${SCENARIO//-/_}"
if ! declare -F "$SCENARIO_FN" >/dev/null; then
    echo "unknown scenario '$SCENARIO'; known: $(list_scenarios | tr '\n' ' ')" >&2; exit 2
fi
for n in "$ROUNDS" "$CONNECTIONS" "$LOADGEN_THREADS" "$MAX_REQUESTS" "$WORKERS"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "expected a positive integer, got '$n'" >&2; exit 2; }
done
for s in "$SECONDS_PER_RUN" "$WARMUP"; do
    [[ "$s" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "expected seconds, got '$s'" >&2; exit 2; }
done

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------
# Cleanup: every process we start is recorded in STARTED_PIDS and stopped on
# exit, error or Ctrl-C.
# ---------------------------------------------------------------------------
# Servers are started with `setsid` (spawn), so each is the leader of its own
# process group and stopping the group also stops anything it forked.
STARTED_PIDS=()
TMP=""
spawn() { # command... ; sets SPAWNED_PID
    setsid "$@" &
    SPAWNED_PID=$!
    STARTED_PIDS+=("$SPAWNED_PID")
}
stop_group() { # pid: TERM its process group, wait up to 5 s, then KILL
    local pid=$1
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]}"; do stop_group "$pid"; done
    if [[ -n "$TMP" && -d "$TMP" ]]; then
        if [[ $KEEP_TMP -eq 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------
need_apt=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_apt+=(nginx-light)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3-minimal)
if [[ ${#need_apt[@]} -gt 0 ]]; then
    log "installing ${need_apt[*]} (apt)"
    [[ $(id -u) -eq 0 ]] || die "need root to apt-get install ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
CLK_TCK=$(getconf CLK_TCK)

log "building gh-load (release)"
swift build -c release --package-path "$BENCH_DIR" --product gh-load >&2
GH_LOAD="$BENCH_DIR/.build/release/gh-load"

# Gatehouse is resolved (and, by default, built) only when a scenario uses it.
GATEHOUSE_SKIP_REASON=""
resolve_gatehouse() {
    if [[ $SKIP_GATEHOUSE -eq 1 ]]; then
        GATEHOUSE_SKIP_REASON="--skip-gatehouse given"
    elif [[ -z "$GATEHOUSE" ]]; then
        log "building gatehouse (release) in $REPO_DIR"
        if swift build -c release --package-path "$REPO_DIR" --product gatehouse >&2; then
            GATEHOUSE="$REPO_DIR/.build/release/gatehouse"
        else
            GATEHOUSE_SKIP_REASON="swift build -c release --product gatehouse failed in $REPO_DIR"
        fi
    elif [[ ! -x "$GATEHOUSE" ]]; then
        GATEHOUSE_SKIP_REASON="$GATEHOUSE is not an executable file"
    fi
    [[ -z "$GATEHOUSE_SKIP_REASON" ]]
}

# ---------------------------------------------------------------------------
# Workspace, PKI (ECDSA P-256, throwaway), the 1 KiB body, ports
# ---------------------------------------------------------------------------
TMP=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
chmod 755 "$TMP"   # nginx workers run as nobody and must read www/
mkdir -p "$TMP/pki" "$TMP/www" "$TMP/nginx-upstream" "$TMP/nginx-proxy" "$TMP/gatehouse"

make_pki() {
    local d=$TMP/pki
    (
        cd "$d"
        openssl ecparam -name prime256v1 -genkey -noout -out ca.key
        openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=Gatehouse bench CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -out ca.pem
        openssl ecparam -name prime256v1 -genkey -noout -out server.key
        openssl req -new -key server.key -subj "/CN=localhost" -out server.csr
        printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
            "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" > server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 \
            -extfile server.ext -out server.pem
        openssl ecparam -name prime256v1 -genkey -noout -out client.key
        openssl req -new -key client.key -subj "/CN=bench-client" -out client.csr
        printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
            "extendedKeyUsage=clientAuth" > client.ext
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 \
            -extfile client.ext -out client.pem
        # PKCS#8 copies, for servers that only read that form.
        openssl pkcs8 -topk8 -nocrypt -in server.key -out server.pkcs8.key
        openssl pkcs8 -topk8 -nocrypt -in client.key -out client.pkcs8.key
    ) >"$TMP/pki/openssl.log" 2>&1 || { cat "$TMP/pki/openssl.log" >&2; die "openssl failed"; }
}
make_pki
printf '%.0s0123456789abcdef' $(seq 1 64) > "$TMP/www/1k.bin"
[[ $(stat -c %s "$TMP/www/1k.bin") -eq 1024 ]] || die "could not write the 1 KiB body"
chmod 755 "$TMP/www"; chmod 644 "$TMP/www/1k.bin"

# Free loopback ports, chosen by the kernel.
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}
read -r UPSTREAM_PORT NGINX_PORT GATEHOUSE_PORT GATEHOUSE_ADMIN_PORT <<<"$(free_ports 4)"

declare -A peer_url peer_args PEER_PID PEER_LABEL
# Row labels in the table (a new peer without one shows its name).
PEER_LABEL[direct]="direct (HTTP, no TLS)"
PEER_LABEL[nginx]="nginx"
PEER_LABEL[gatehouse]="gatehouse"
"$SCENARIO_FN"

# ---------------------------------------------------------------------------
# Peers. start_<peer> starts the process (recording it in STARTED_PIDS), sets
# PEER_PID[<peer>] to the pid whose process tree is CPU-accounted, and returns
# non-zero if the peer cannot run (it is then skipped with a message).
# ---------------------------------------------------------------------------
wait_tcp() { # port timeout_s
    local i
    for i in $(seq 1 $(( $2 * 10 ))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

start_upstream() {
    local d=$TMP/nginx-upstream
    cat >"$d/nginx.conf" <<EOF
worker_processes $UPSTREAM_WORKERS;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    default_type application/octet-stream;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    open_file_cache max=64;
    client_body_temp_path $d/client_body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    server {
        listen 127.0.0.1:$UPSTREAM_PORT backlog=4096;
        root $TMP/www;
    }
}
EOF
    spawn "$NGINX" -e "$d/error.log" -p "$d" -c "$d/nginx.conf" >"$d/stdout.log" 2>&1
    UPSTREAM_PID=$SPAWNED_PID
    wait_tcp "$UPSTREAM_PORT" 10 || { cat "$d/error.log" >&2; die "upstream nginx did not start"; }
}

start_direct() { PEER_PID[direct]=""; }   # no proxy: the upstream alone serves

start_nginx() {
    local d=$TMP/nginx-proxy
    cat >"$d/nginx.conf" <<EOF
worker_processes $WORKERS;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_body_temp_path $d/client_body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    upstream origin {
        server 127.0.0.1:$UPSTREAM_PORT;
        keepalive 64;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT ssl backlog=4096;
        ssl_certificate $TMP/pki/server.pem;
        ssl_certificate_key $TMP/pki/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        $NGINX_PROXY_EXTRA
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    spawn "$NGINX" -e "$d/error.log" -p "$d" -c "$d/nginx.conf" >"$d/stdout.log" 2>&1
    PEER_PID[nginx]=$SPAWNED_PID
    wait_tcp "$NGINX_PORT" 10 || { cat "$d/error.log" >&2; stop_group "${PEER_PID[nginx]}"; return 1; }
}

http_status() { # port path -> status code of GET (plain HTTP), or empty
    local line=""
    {
        exec 3<>"/dev/tcp/127.0.0.1/$1" || return 0
        printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&3
        IFS= read -r -t 2 line <&3 || true
        exec 3>&-
    } 2>/dev/null
    awk '{print $2}' <<<"$line"
}

start_gatehouse() {
    resolve_gatehouse || return 1
    local d=$TMP/gatehouse
    cat >"$d/gatehouse.yaml" <<EOF
environment: bench
listeners:
  - name: public
    address: 127.0.0.1:$GATEHOUSE_PORT
    tls:
      certificate: $TMP/pki/server.pem
      private_key: file:$TMP/pki/server.key
$gatehouse_listener_tls_extra
admin:
  address: 127.0.0.1:$GATEHOUSE_ADMIN_PORT
upstreams:
  origin:
    endpoints: ["127.0.0.1:$UPSTREAM_PORT"]
routes:
  - name: all
    match:
      path_prefix: /
    upstream: origin
decision_log:
  path: $d/decisions.jsonl
EOF
    spawn "$GATEHOUSE" serve --config "$d/gatehouse.yaml" >"$d/stdout.log" 2>"$d/stderr.log"
    PEER_PID[gatehouse]=$SPAWNED_PID
    local i
    for i in $(seq 1 150); do   # 15 s
        if [[ "$(http_status "$GATEHOUSE_ADMIN_PORT" /readyz)" == "200" ]]; then return 0; fi
        if ! kill -0 "${PEER_PID[gatehouse]}" 2>/dev/null; then
            local status=0
            wait "${PEER_PID[gatehouse]}" || status=$?
            GATEHOUSE_SKIP_REASON="$GATEHOUSE exited during start-up with status $status (its output is in the results directory)"
            return 1
        fi
        sleep 0.1
    done
    GATEHOUSE_SKIP_REASON="gatehouse did not report ready on /readyz within 15 s"
    stop_group "${PEER_PID[gatehouse]}"   # so an unready process cannot disturb the other peers
    return 1
}

# ---------------------------------------------------------------------------
# CPU accounting: utime+stime (fields 14 and 15 of /proc/PID/stat, in clock
# ticks) summed over a process and its children (nginx master + workers).
# ---------------------------------------------------------------------------
proc_ticks() { # pid -> utime+stime of that process (all its threads)
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    rest=${stat##*) }            # fields from 3 (state) on; comm may hold spaces
    # shellcheck disable=SC2086
    set -- $rest
    echo $(( ${12} + ${13} ))    # fields 14 and 15
}
tree_ticks() { # root pid -> ticks of it and its direct children
    [[ -n "$1" ]] || { echo 0; return; }
    local total child
    total=$(proc_ticks "$1")
    for child in $(pgrep -P "$1" 2>/dev/null || true); do
        total=$(( total + $(proc_ticks "$child") ))
    done
    echo "$total"
}

# ---------------------------------------------------------------------------
# Start everything
# ---------------------------------------------------------------------------
log "scenario $SCENARIO: $SCENARIO_DESC"
log "temp dir $TMP; ports upstream=$UPSTREAM_PORT nginx=$NGINX_PORT gatehouse=$GATEHOUSE_PORT admin=$GATEHOUSE_ADMIN_PORT"
start_upstream
ACTIVE_PEERS=()
SKIPPED_NOTES=()
for peer in "${SCENARIO_PEERS[@]}"; do
    if "start_$peer"; then
        ACTIVE_PEERS+=("$peer")
    else
        reason="failed to start"
        [[ $peer == gatehouse ]] && reason=$GATEHOUSE_SKIP_REASON
        SKIPPED_NOTES+=("$peer SKIPPED: $reason")
        log "*** $peer SKIPPED: $reason"
        if [[ $peer == gatehouse ]]; then
            for f in "$TMP/gatehouse/stdout.log" "$TMP/gatehouse/stderr.log"; do
                [[ -s "$f" ]] && tail -n 20 "$f" | sed "s/^/    gatehouse $(basename "$f" .log): /" >&2
            done
        fi
    fi
done
[[ ${#ACTIVE_PEERS[@]} -gt 0 ]] || die "no peer could start"

# A one-request check per peer, so a misconfiguration fails loudly, not as a slow run.
for peer in "${ACTIVE_PEERS[@]}"; do
    # shellcheck disable=SC2086
    check=$("$GH_LOAD" --url "${peer_url[$peer]}" ${peer_args[$peer]} --connections 1 --max-requests 1 --duration 5 2>&1 | tail -n 1)
    [[ "$check" == *'"requests":1,"errors":0,"non2xx":0'* ]] || die "$peer: a single request failed: $check"
done

STAMP=$(date +%Y%m%d-%H%M%S)
OUT="$BENCH_DIR/results/$STAMP-$SCENARIO"
mkdir -p "$OUT"
{
    echo "date: $(date -Is)"
    echo "scenario: $SCENARIO — $SCENARIO_DESC"
    echo "args: rounds=$ROUNDS seconds=$SECONDS_PER_RUN warmup=$WARMUP connections=$CONNECTIONS loadgen_threads=$LOADGEN_THREADS nginx_workers=$WORKERS upstream_workers=$UPSTREAM_WORKERS"
    echo "kernel: $(uname -sr); cpus: $(nproc); model: $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
    echo "nginx: $("$NGINX" -v 2>&1)"
    echo "openssl: $(openssl version)"
    echo "gatehouse: ${GATEHOUSE:-none} ${GATEHOUSE_SKIP_REASON:+(skipped: $GATEHOUSE_SKIP_REASON)}"
    echo "git: $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "active peers: ${ACTIVE_PEERS[*]}"
} >"$OUT/env.txt"
for n in "${SKIPPED_NOTES[@]}"; do echo "$n" >>"$OUT/env.txt"; done
for peer in "${ACTIVE_PEERS[@]}"; do
    printf '%s\t%s\n' "$peer" "${PEER_LABEL[$peer]:-$peer}" >>"$OUT/peers.tsv"
done
# Keep the generated configs (not the keys) next to the results.
cp "$TMP/nginx-upstream/nginx.conf" "$OUT/nginx-upstream.conf"
cp "$TMP/nginx-proxy/nginx.conf" "$OUT/nginx-proxy.conf" 2>/dev/null || true
cp "$TMP/gatehouse/gatehouse.yaml" "$OUT/gatehouse.yaml" 2>/dev/null || true
cp "$TMP/gatehouse/stdout.log" "$OUT/gatehouse.stdout.log" 2>/dev/null || true
cp "$TMP/gatehouse/stderr.log" "$OUT/gatehouse.stderr.log" 2>/dev/null || true

# ---------------------------------------------------------------------------
# Rounds: every active peer once per round, the starting peer rotating.
# ---------------------------------------------------------------------------
n_peers=${#ACTIVE_PEERS[@]}
total_runs=$(( ROUNDS * n_peers ))
log "$ROUNDS round(s) x $n_peers peer(s) x (${WARMUP}s warm-up + ${SECONDS_PER_RUN}s) — results in $OUT"
# µs per request = ticks * 1e6 / CLK_TCK / requests
per_req() { awk -v t="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { if (n > 0) printf "%.2f", t * 1e6 / hz / n; else print "null" }'; }
run_no=0
for round in $(seq 1 "$ROUNDS"); do
    for i in $(seq 0 $(( n_peers - 1 ))); do
        peer=${ACTIVE_PEERS[$(( (i + round - 1) % n_peers ))]}
        run_no=$(( run_no + 1 ))
        # shellcheck disable=SC2206
        args=(--url "${peer_url[$peer]}" ${peer_args[$peer]} "${LOADGEN_ARGS[@]}")
        if [[ "$WARMUP" != "0" ]]; then
            "$GH_LOAD" "${args[@]}" --duration "$WARMUP" >/dev/null 2>>"$OUT/gh-load.stderr" || true
        fi
        p0=$(tree_ticks "${PEER_PID[$peer]}"); u0=$(tree_ticks "$UPSTREAM_PID")
        line=$("$GH_LOAD" "${args[@]}" --duration "$SECONDS_PER_RUN" 2>>"$OUT/gh-load.stderr") \
            || die "gh-load failed for $peer (see $OUT/gh-load.stderr)"
        p1=$(tree_ticks "${PEER_PID[$peer]}"); u1=$(tree_ticks "$UPSTREAM_PID")
        reqs=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' <<<"$line")
        proxy_cpu=null
        [[ -n "${PEER_PID[$peer]}" ]] && proxy_cpu=$(per_req $(( p1 - p0 )) "$reqs")
        upstream_cpu=$(per_req $(( u1 - u0 )) "$reqs")
        record="{\"round\":$round,\"peer\":\"$peer\",\"scenario\":\"$SCENARIO\",${line#\{}"
        record="${record%\}},\"proxy_cpu_ticks\":$(( p1 - p0 )),\"upstream_cpu_ticks\":$(( u1 - u0 )),\"clk_tck\":$CLK_TCK,\"proxy_cpu_us_per_req\":$proxy_cpu,\"upstream_cpu_us_per_req\":$upstream_cpu}"
        echo "$record" >>"$OUT/rounds.jsonl"
        log "[$run_no/$total_runs] round $round $peer: $line proxy_cpu_us/req=$proxy_cpu upstream_cpu_us/req=$upstream_cpu"
    done
done

# ---------------------------------------------------------------------------
# Summary: medians over rounds, ratios to nginx.
# ---------------------------------------------------------------------------
python3 - "$OUT/rounds.jsonl" "$OUT/peers.tsv" "$SCENARIO" "$SCENARIO_DESC" "${SKIPPED_NOTES[@]}" >"$OUT/summary.txt" <<'EOF'
import json, statistics, sys
path, peers_tsv, scenario, desc, skipped = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
runs = [json.loads(l) for l in open(path) if l.strip()]
labels = dict(l.rstrip("\n").split("\t", 1) for l in open(peers_tsv) if "\t" in l)
peers = []
for r in runs:
    if r["peer"] not in peers: peers.append(r["peer"])
def med(peer, key):
    xs = [r[key] for r in runs if r["peer"] == peer and r.get(key) is not None]
    return statistics.median(xs) if xs else None
def f(v, d=0):
    return "-" if v is None else f"{v:,.{d}f}"
cols = [("rps", "req/s", 0), ("p50_us", "p50 µs", 0), ("p90_us", "p90 µs", 0), ("p99_us", "p99 µs", 0),
        ("proxy_cpu_us_per_req", "proxy CPU µs/req", 1),
        ("upstream_cpu_us_per_req", "upstream µs/req", 1),
        ("loadgen_cpu_us_per_req", "loadgen µs/req", 1)]
rounds = max(r["round"] for r in runs)
print(f"scenario {scenario}: {desc}")
print(f"medians over {rounds} round(s); errors and non-2xx are totals")
w = [max(len(c[1]), 8) + 2 for c in cols]
hdr = f"{'peer':<23}" + "".join(f"{c[1]:>{w[i]}}" for i, c in enumerate(cols)) + f"{'errors':>8}{'non2xx':>8}"
print(hdr); print("-" * len(hdr))
for p in peers:
    errs = sum(r["errors"] for r in runs if r["peer"] == p)
    n2 = sum(r["non2xx"] for r in runs if r["peer"] == p)
    print(f"{labels.get(p, p):<23}" + "".join(f"{f(med(p, c[0]), c[2]):>{w[i]}}" for i, c in enumerate(cols)) + f"{errs:>8}{n2:>8}")
print("µs/req columns: CPU time (user+system, from /proc) per request of the proxy, the upstream nginx and gh-load")
print()
if "gatehouse" in peers and "nginx" in peers:
    def ratio(key):
        g, n = med("gatehouse", key), med("nginx", key)
        return "-" if not g or not n else f"{g / n:.2f}x"
    print("gatehouse / nginx:  "
          f"CPU per request {ratio('proxy_cpu_us_per_req')}   "
          f"p99 {ratio('p99_us')}   p50 {ratio('p50_us')}   req/s {ratio('rps')}")
    print("  (CPU and latency: lower is better, < 1.00x beats nginx; req/s: higher is better)")
else:
    print("gatehouse / nginx ratios: n/a (gatehouse not in this run)")
for s in skipped:
    print(f"*** {s}")
EOF
echo
cat "$OUT/summary.txt"
echo
echo "raw per-run JSON: $OUT/rounds.jsonl; summary: $OUT/summary.txt; environment: $OUT/env.txt"
