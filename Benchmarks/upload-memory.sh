#!/usr/bin/env bash
# Streams a large upload (default 1 GiB) through Gatehouse to an upstream that discards it,
# and reports Gatehouse's resident memory before and at peak, plus throughput through the
# gateway against the same upload sent straight to the upstream (same run).
# Everything runs on 127.0.0.1 and stops by itself.
#   Benchmarks/upload-memory.sh [--size-mib 1024] [--gatehouse PATH]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
size_mib=1024
gatehouse=""
while [ $# -gt 0 ]; do
    case "$1" in
        --size-mib) size_mib=$2; shift 2 ;;
        --gatehouse) gatehouse=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
if [ -z "$gatehouse" ]; then
    (cd "$root" && swift build -c release --product gatehouse >/dev/null)
    gatehouse="$root/.build/release/gatehouse"
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
upstream_port=$(free_port)
gateway_port=$(free_port)
admin_port=$(free_port)

cat > "$work/sink.py" <<'PY'
import re, socket, sys, threading
port = int(sys.argv[1])
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(16)
def handle(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return conn.close()
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
    received = len(rest)
    while received < length:
        chunk = conn.recv(1 << 20)
        if not chunk:
            break
        received += len(chunk)
    body = str(received).encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
    conn.close()
while True:
    conn, _ = server.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
PY
python3 "$work/sink.py" "$upstream_port" & pids+=($!)

cat > "$work/gatehouse.yaml" <<YAML
environment: bench
listeners:
  - name: public
    address: 127.0.0.1:$gateway_port
    insecure_plaintext: true
admin:
  address: 127.0.0.1:$admin_port
upstreams:
  sink:
    endpoints: ["127.0.0.1:$upstream_port"]
    response_timeout: 120s
routes:
  - name: upload
    match: { path_prefix: / }
    upstream: sink
    max_body_bytes: 4GiB
decision_log:
  path: $work/decisions.jsonl
YAML
"$gatehouse" serve --config "$work/gatehouse.yaml" 2>"$work/gatehouse.err" & gpid=$!; pids+=($gpid)
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done

truncate -s "${size_mib}M" "$work/payload"   # sparse: reads as zeros, costs no disk
rss_kib() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"; }
before=$(rss_kib "$gpid" VmRSS)

upload() {
    curl -sS --max-time 600 -H 'Expect:' -o "$work/out" -w '%{http_code} %{time_total}' -X POST -T "$work/payload" "http://127.0.0.1:$1/upload"
}
direct=$(upload "$upstream_port")
gateway=$(upload "$gateway_port")
read -r direct_status direct_seconds <<< "$direct"
read -r gateway_status gateway_seconds <<< "$gateway"
peak=$(rss_kib "$gpid" VmHWM)
after=$(rss_kib "$gpid" VmRSS)
received=$(cat "$work/out")

echo "upload of ${size_mib} MiB: direct HTTP $direct_status in ${direct_seconds}s; through gatehouse HTTP $gateway_status in ${gateway_seconds}s; upstream received $received bytes"
echo "gatehouse RSS: before ${before} KiB, peak ${peak} KiB (+$((peak - before)) KiB), after ${after} KiB"
python3 - "$size_mib" "$direct_seconds" "$gateway_seconds" <<'PY'
import sys
size, direct, gateway = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"throughput: direct {size/direct:.0f} MiB/s, through gatehouse {size/gateway:.0f} MiB/s ({direct/gateway:.2f}x of direct)")
PY
[ "$gateway_status" = 200 ] && [ "$received" = "$((size_mib * 1024 * 1024))" ]
