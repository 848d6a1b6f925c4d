# shellcheck shell=bash
# shellcheck disable=SC2034  # globals set here are read by the scripts that source this
# Shared by run.sh and idle-memory.sh (sourced, not run): process cleanup, tools, the
# throwaway PKI (with an X.509-SVID client certificate), loopback ports, the upstream,
# nginx and Gatehouse configurations, and /proc accounting (CPU ticks, RSS).
#
# The caller sets `set -euo pipefail`, sources this file, then calls bench_init.
# Everything listens on 127.0.0.1 only.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)

# The SPIFFE identity of the benchmark client, and its trust domain.
SPIFFE_TRUST_DOMAIN=prod.example
CLIENT_SPIFFE_ID="spiffe://$SPIFFE_TRUST_DOMAIN/bench/client"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------
# Cleanup: every process we start is recorded in STARTED_PIDS and stopped on
# exit, error or Ctrl-C. Servers are started with `setsid` (spawn), so each is
# the leader of its own process group and stopping the group also stops
# anything it forked.
# ---------------------------------------------------------------------------
STARTED_PIDS=()
TMP=""
KEEP_TMP=${KEEP_TMP:-0}
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
bench_cleanup() {
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

# Traps, tools, gh-load, the workspace ($TMP) with the PKI and the 1 KiB body.
bench_init() {
    trap bench_cleanup EXIT
    trap 'log "interrupted"; exit 130' INT TERM
    ensure_tools
    build_gh_load
    TMP=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
    chmod 755 "$TMP"   # nginx workers run as nobody and must read www/
    mkdir -p "$TMP/pki" "$TMP/www" "$TMP/nginx-upstream" "$TMP/nginx-proxy" "$TMP/gatehouse"
    make_pki
    printf '%.0s0123456789abcdef' $(seq 1 64) > "$TMP/www/1k.bin"
    [[ $(stat -c %s "$TMP/www/1k.bin") -eq 1024 ]] || die "could not write the 1 KiB body"
    chmod 755 "$TMP/www"; chmod 644 "$TMP/www/1k.bin"
}

# ---------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------
ensure_tools() {
    local need_apt=()
    command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_apt+=(nginx-light)
    command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
    command -v python3 >/dev/null 2>&1 || need_apt+=(python3-minimal)
    command -v ss >/dev/null 2>&1 || need_apt+=(iproute2)
    if [[ ${#need_apt[@]} -gt 0 ]]; then
        log "installing ${need_apt[*]} (apt)"
        [[ $(id -u) -eq 0 ]] || die "need root to apt-get install ${need_apt[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    fi
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
    CLK_TCK=$(getconf CLK_TCK)
}

build_gh_load() {
    log "building gh-load (release)"
    swift build -c release --package-path "$BENCH_DIR" --product gh-load >&2
    GH_LOAD="$BENCH_DIR/.build/release/gh-load"
}

# Gatehouse is resolved (and, by default, built) only when it is used.
# Inputs: GATEHOUSE (path or empty), SKIP_GATEHOUSE (0/1).
GATEHOUSE=${GATEHOUSE:-}
SKIP_GATEHOUSE=${SKIP_GATEHOUSE:-0}
BASELINE_GATEHOUSE=${BASELINE_GATEHOUSE:-}   # run.sh --baseline: peer gatehouse-baseline's binary
WITH_FLOOR=${WITH_FLOOR:-}                   # run.sh --floor: peer nio-floor
ONLY_PEERS=${ONLY_PEERS:-}                   # run.sh --peers
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
# PKI (ECDSA P-256, throwaway, in $TMP/pki):
#   ca.pem/ca.key          the CA; also the SPIFFE trust bundle of $SPIFFE_TRUST_DOMAIN
#   server.pem/server.key  IP:127.0.0.1, DNS:localhost, serverAuth
#   client.pem/client.key  an X.509-SVID for $CLIENT_SPIFFE_ID (checked by check_client_svid)
# ---------------------------------------------------------------------------
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
        # The client certificate is an X.509-SVID (SPIFFE X509-SVID §4, §5): exactly one
        # URI SAN holding the SPIFFE ID and no other name, not a CA, key usage critical
        # with digitalSignature only, extended key usage clientAuth, signed by the CA that
        # is the trust domain's bundle.
        openssl ecparam -name prime256v1 -genkey -noout -out client.key
        openssl req -new -key client.key -subj "/CN=bench-client" -out client.csr
        printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
            "extendedKeyUsage=clientAuth" "subjectAltName=URI:$CLIENT_SPIFFE_ID" > client.ext
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 \
            -extfile client.ext -out client.pem
        # PKCS#8 copies, for servers that only read that form.
        openssl pkcs8 -topk8 -nocrypt -in server.key -out server.pkcs8.key
        openssl pkcs8 -topk8 -nocrypt -in client.key -out client.pkcs8.key
    ) >"$TMP/pki/openssl.log" 2>&1 || { cat "$TMP/pki/openssl.log" >&2; die "openssl failed"; }
    check_client_svid "$d/client.pem" "$d/ca.pem"
}

# Fails loudly unless CERT is exactly the X.509-SVID the Gatehouse mTLS scenarios expect.
check_client_svid() { # cert.pem ca.pem
    local text san
    text=$(openssl x509 -in "$1" -noout -text) || die "cannot read $1"
    san=$(awk '/X509v3 Subject Alternative Name:/{getline; gsub(/^ +| +$/, ""); print}' <<<"$text")
    [[ "$san" == "URI:$CLIENT_SPIFFE_ID" ]] || die "client cert: SAN is '$san', expected exactly URI:$CLIENT_SPIFFE_ID"
    grep -A1 'X509v3 Basic Constraints: critical' <<<"$text" | grep -q 'CA:FALSE' \
        || die "client cert: basicConstraints is not critical CA:FALSE"
    [[ "$(grep -A1 'X509v3 Key Usage: critical' <<<"$text" | tail -n 1 | tr -d ' ')" == "DigitalSignature" ]] \
        || die "client cert: keyUsage is not critical digitalSignature only"
    grep -A1 'X509v3 Extended Key Usage' <<<"$text" | grep -q 'TLS Web Client Authentication' \
        || die "client cert: extendedKeyUsage lacks clientAuth"
    openssl verify -CAfile "$2" -purpose sslclient "$1" >/dev/null 2>&1 \
        || die "client cert: does not verify against $2 for clientAuth"
}

# ---------------------------------------------------------------------------
# Ports and probes
# ---------------------------------------------------------------------------
free_ports() { # count -> that many free loopback ports, chosen by the kernel
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

wait_tcp() { # port timeout_s
    local i
    for i in $(seq 1 $(( $2 * 10 ))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
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

# ---------------------------------------------------------------------------
# Servers. PEER_PID[<peer>] is the pid whose process tree is accounted.
# ---------------------------------------------------------------------------
declare -A PEER_PID
UPSTREAM_WORKERS=${UPSTREAM_WORKERS:-1}
WORKERS=${WORKERS:-$(nproc 2>/dev/null || echo 2)}

# Knobs of the nginx proxy (a scenario or script may change them before start_nginx):
NGINX_PROXY_EXTRA=""              # lines in its server {} block (e.g. ssl_verify_client)
NGINX_WORKER_CONNECTIONS=4096     # events { worker_connections } (client + upstream connections)
NGINX_KEEPALIVE_TIMEOUT=120s
NGINX_MAIN_EXTRA=""               # lines at the top level (e.g. worker_rlimit_nofile)
NGINX_HTTP_EXTRA=""               # lines in its http {} block (e.g. log_format)
NGINX_ACCESS_LOG="off"            # its access_log directive's arguments (run.sh --nginx-json-log)

# Knobs of the Gatehouse config (YAML lines, already indented; empty = none):
gatehouse_root_extra=""           # top level, e.g. trust_domains:
gatehouse_listener_extra=""       # under the listener (4 spaces), e.g. max_connections, timeouts
gatehouse_listener_tls_extra=""   # under the listener's tls: (6 spaces), e.g. client_certificates
gatehouse_route_extra=""          # under the route (4 spaces), e.g. peers
gatehouse_routes_extra=""         # whole routes (list items, 2 spaces) before the route `all`

# Client certificates required on both proxies, against the same CA:
# nginx verifies the chain; Gatehouse verifies the X.509-SVID against the trust
# domain's bundle and allows only $CLIENT_SPIFFE_ID on the route.
use_mtls() {
    NGINX_PROXY_EXTRA="ssl_client_certificate $TMP/pki/ca.pem; ssl_verify_client on;"
    gatehouse_root_extra="trust_domains:
  $SPIFFE_TRUST_DOMAIN:
    bundle: $TMP/pki/ca.pem"
    gatehouse_listener_tls_extra="      client_certificates: required"
    gatehouse_route_extra="    peers: [\"$CLIENT_SPIFFE_ID\"]"
    NIO_FLOOR_EXTRA=(--client-ca "$TMP/pki/ca.pem")
}
NIO_FLOOR_EXTRA=()   # gh-floor arguments of the scenario (use_mtls: verify client certificates)

# Peer nio-floor (run.sh --floor): gh-floor, the Benchmarks package's minimal SwiftNIO + NIOSSL
# proxy (TLS termination, client-certificate chain verification like nginx's, a byte relay to
# the upstream): what the stack costs before Gatehouse checks or writes anything.
start_nio_floor() { # needs NIO_FLOOR_PORT, UPSTREAM_PORT
    local d=$TMP/nio-floor
    mkdir -p "$d"
    log "building gh-floor (release)"
    swift build -c release --package-path "$BENCH_DIR" --product gh-floor >&2 || return 1
    spawn "$BENCH_DIR/.build/release/gh-floor" --port "$NIO_FLOOR_PORT" --upstream-port "$UPSTREAM_PORT" \
        --cert "$TMP/pki/server.pem" --key "$TMP/pki/server.key" "${NIO_FLOOR_EXTRA[@]}" \
        >"$d/stdout.log" 2>"$d/stderr.log"
    PEER_PID[nio-floor]=$SPAWNED_PID
    wait_tcp "$NIO_FLOOR_PORT" 10 || { cat "$d/stderr.log" >&2; stop_group "${PEER_PID[nio-floor]}"; return 1; }
}

start_upstream() { # needs UPSTREAM_PORT; sets UPSTREAM_PID
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
    # POST /hook (the webhook scenarios): like a webhook receiver, nginx reads the whole
    # body (into memory: client_body_buffer_size) before it answers 200 "ok". A bare
    # \`return\` would answer before the body has arrived, and a proxy still streaming the
    # body would then have to drop the connection; so /hook is proxied, without the body,
    # to /hook-ok on this same nginx, which nginx does only once the body is read. The log
    # line per delivery (\$request_length includes the body) shows it arrived in full and
    # that the proxy's upstream connection is reused (\$connection_requests).
    log_format hook '\$connection \$connection_requests \$request_length \$content_length \$status';
    upstream self {
        server 127.0.0.1:$UPSTREAM_PORT;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$UPSTREAM_PORT backlog=4096;
        root $TMP/www;
        location = /hook {
            client_max_body_size 1m;
            client_body_buffer_size 512k;
            access_log $d/hook.log hook buffer=256k flush=1s;
            proxy_pass http://self/hook-ok;
            proxy_pass_request_body off;
            proxy_method GET;
            proxy_set_header Content-Length "";
            proxy_set_header Content-Type "";
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location = /hook-ok {
            default_type text/plain;
            return 200 "ok\n";
        }
    }
}
EOF
    spawn "$NGINX" -e "$d/error.log" -p "$d" -c "$d/nginx.conf" >"$d/stdout.log" 2>&1
    UPSTREAM_PID=$SPAWNED_PID
    wait_tcp "$UPSTREAM_PORT" 10 || { cat "$d/error.log" >&2; die "upstream nginx did not start"; }
}

start_direct() { PEER_PID[direct]=""; }   # no proxy: the upstream alone serves

start_nginx() { # needs NGINX_PORT, UPSTREAM_PORT
    local d=$TMP/nginx-proxy
    cat >"$d/nginx.conf" <<EOF
worker_processes $WORKERS;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
$NGINX_MAIN_EXTRA
events { worker_connections $NGINX_WORKER_CONNECTIONS; }
http {
    keepalive_requests 10000000;
    keepalive_timeout $NGINX_KEEPALIVE_TIMEOUT;
    client_body_temp_path $d/client_body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    $NGINX_HTTP_EXTRA
    access_log $NGINX_ACCESS_LOG;
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

write_gatehouse_config() { # file; needs GATEHOUSE_PORT, GATEHOUSE_ADMIN_PORT, UPSTREAM_PORT
    local d=$TMP/$GATEHOUSE_INSTANCE
    # Empty extras leave no blank lines behind.
    sed '/^[[:space:]]*$/d' >"$1" <<EOF
environment: bench
$gatehouse_root_extra
listeners:
  - name: public
    address: 127.0.0.1:$GATEHOUSE_PORT
$gatehouse_listener_extra
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
$gatehouse_routes_extra
  - name: all
    match:
      path_prefix: /
    upstream: origin
$gatehouse_route_extra
decision_log:
  path: $d/decisions.jsonl
EOF
}

# The Gatehouse instance being configured/started: its peer name and directory $TMP/<name>.
GATEHOUSE_INSTANCE=gatehouse

# Starts Gatehouse and waits for /readyz; on failure sets GATEHOUSE_SKIP_REASON, returns 1.
# With GATEHOUSE_INSTANCE (and GATEHOUSE_PORT, GATEHOUSE_ADMIN_PORT, gatehouse_*_extra)
# set as locals by a caller, it starts another instance (see start_gatehouse_notoken).
start_gatehouse() {
    local name=$GATEHOUSE_INSTANCE
    local d=$TMP/$name
    mkdir -p "$d"
    write_gatehouse_config "$d/gatehouse.yaml"   # written even when skipped, to be looked at
    resolve_gatehouse || return 1
    spawn "$GATEHOUSE" serve --config "$d/gatehouse.yaml" >"$d/stdout.log" 2>"$d/stderr.log"
    PEER_PID[$name]=$SPAWNED_PID
    for _ in $(seq 1 150); do   # 15 s
        if [[ "$(http_status "$GATEHOUSE_ADMIN_PORT" /readyz)" == "200" ]]; then return 0; fi
        if ! kill -0 "${PEER_PID[$name]}" 2>/dev/null; then
            local status=0
            wait "${PEER_PID[$name]}" || status=$?
            GATEHOUSE_SKIP_REASON="$GATEHOUSE exited during start-up with status $status (its output is in the results directory)"
            # Its last words (e.g. a config error such as "`redis` is not available in this build").
            local said
            said=$(grep -v '^[[:space:]]*$' "$d/stderr.log" "$d/stdout.log" 2>/dev/null | tail -n 1 | cut -d: -f2- | cut -c1-300)
            [[ -n "$said" ]] && GATEHOUSE_SKIP_REASON+="; it said: $said"
            return 1
        fi
        sleep 0.1
    done
    GATEHOUSE_SKIP_REASON="$name did not report ready on /readyz within 15 s"
    stop_group "${PEER_PID[$name]}"   # so an unready process cannot disturb the other peers
    return 1
}

# A second Gatehouse (peer gatehouse-notoken, in $TMP/gatehouse-notoken): the same
# configuration on its own ports, with gatehouse_notoken_route_extra as its route lines
# (in the token scenarios: the same mTLS route without the token requirement).
gatehouse_notoken_route_extra=""
start_gatehouse_notoken() { # needs GATEHOUSE_NOTOKEN_PORT, GATEHOUSE_NOTOKEN_ADMIN_PORT
    local GATEHOUSE_INSTANCE=gatehouse-notoken
    local GATEHOUSE_PORT=$GATEHOUSE_NOTOKEN_PORT GATEHOUSE_ADMIN_PORT=$GATEHOUSE_NOTOKEN_ADMIN_PORT
    local gatehouse_route_extra=$gatehouse_notoken_route_extra
    start_gatehouse
}

# A second Gatehouse for the webhook scenarios (peer gatehouse-nowebhook, in
# $TMP/gatehouse-nowebhook): the same configuration on its own ports, with
# gatehouse_nowebhook_routes_extra as its extra routes (the same POST /hook route without
# `webhook:`).
gatehouse_nowebhook_routes_extra=""
start_gatehouse_nowebhook() { # needs GATEHOUSE_NOWEBHOOK_PORT, GATEHOUSE_NOWEBHOOK_ADMIN_PORT
    local GATEHOUSE_INSTANCE=gatehouse-nowebhook
    local GATEHOUSE_PORT=$GATEHOUSE_NOWEBHOOK_PORT GATEHOUSE_ADMIN_PORT=$GATEHOUSE_NOWEBHOOK_ADMIN_PORT
    local gatehouse_routes_extra=$gatehouse_nowebhook_routes_extra
    start_gatehouse
}

# ---------------------------------------------------------------------------
# Rate limits (the ratelimit scenario, issue 6). The limit is high (1,000,000/s, burst
# 1,000,000) so every request is admitted, but each one runs the GCRA cell update; key `ip`:
# every gh-load connection comes from 127.0.0.1, so all requests share one cell.
#   gatehouse          rate_limit: bench, in-memory store (the default `state`)
#   gatehouse-nolimit  the same configuration without rate_limits/rate_limit
#   gatehouse-redis    gatehouse plus state: { backend: redis, ... } against a redis-server
#                      started here (start_redis) on its own loopback port
# ---------------------------------------------------------------------------
RATELIMIT_NAME=bench
RATELIMIT_RATE=1000000   # per second; also the burst
gatehouse_nolimit_root_extra=""
gatehouse_nolimit_route_extra=""
gatehouse_redis_root_extra=""
use_gatehouse_ratelimit() { # needs REDIS_PORT (for gatehouse-redis's config)
    gatehouse_nolimit_root_extra=$gatehouse_root_extra
    gatehouse_nolimit_route_extra=$gatehouse_route_extra
    gatehouse_root_extra+="
rate_limits:
  $RATELIMIT_NAME:
    key: ip
    rate: $RATELIMIT_RATE/s
    burst: $RATELIMIT_RATE"
    gatehouse_route_extra+="
    rate_limit: $RATELIMIT_NAME"
    gatehouse_redis_root_extra="$gatehouse_root_extra
state:
  backend: redis
  address: 127.0.0.1:$REDIS_PORT
  timeout: 50ms"
}

# Peer gatehouse-baseline (run.sh --baseline): peer gatehouse's configuration on its own
# ports, served by another binary, for an A/B of two builds in the same run.
start_gatehouse_baseline() { # needs GATEHOUSE_BASELINE_PORT, GATEHOUSE_BASELINE_ADMIN_PORT
    local GATEHOUSE_INSTANCE=gatehouse-baseline GATEHOUSE=$BASELINE_GATEHOUSE
    local GATEHOUSE_PORT=$GATEHOUSE_BASELINE_PORT GATEHOUSE_ADMIN_PORT=$GATEHOUSE_BASELINE_ADMIN_PORT
    start_gatehouse
}

start_gatehouse_nolimit() { # needs GATEHOUSE_NOLIMIT_PORT, GATEHOUSE_NOLIMIT_ADMIN_PORT
    local GATEHOUSE_INSTANCE=gatehouse-nolimit
    local GATEHOUSE_PORT=$GATEHOUSE_NOLIMIT_PORT GATEHOUSE_ADMIN_PORT=$GATEHOUSE_NOLIMIT_ADMIN_PORT
    local gatehouse_root_extra=$gatehouse_nolimit_root_extra gatehouse_route_extra=$gatehouse_nolimit_route_extra
    start_gatehouse
}

# A candidate policy in shadow (the rollout-shadow scenario, issue 7). The baseline peer is
# gatehouse-nolimit, started with the configuration as it was before the rollout was added.
use_gatehouse_rollout() {
    gatehouse_nolimit_root_extra=$gatehouse_root_extra
    gatehouse_nolimit_route_extra=$gatehouse_route_extra
    mkdir -p "$TMP/rollout"
    cat >"$TMP/rollout/candidate.yaml" <<EOF
version: bench-candidate
routes:
  - name: all
    match:
      path_prefix: /
    upstream: origin
    peers: ["$CLIENT_SPIFFE_ID", "spiffe://$SPIFFE_TRUST_DOMAIN/ns/other/sa/batch"]
EOF
    gatehouse_root_extra+="
version: bench-stable
rollout:
  candidate: $TMP/rollout/candidate.yaml
  mode: shadow
  auto_rollback: { window: 5m, min_requests: 1000, max_extra_deny_rate: 0.5 }"
}

# Starts redis-server (if not yet running) and then the Gatehouse that uses it.
start_gatehouse_redis() { # needs GATEHOUSE_REDIS_PORT, GATEHOUSE_REDIS_ADMIN_PORT, REDIS_PORT
    if [[ -z "${REDIS_PID:-}" ]] && ! start_redis; then
        GATEHOUSE_SKIP_REASON="redis-server could not start on 127.0.0.1:$REDIS_PORT (see $TMP/redis/redis.log)"
        return 1
    fi
    local GATEHOUSE_INSTANCE=gatehouse-redis
    local GATEHOUSE_PORT=$GATEHOUSE_REDIS_PORT GATEHOUSE_ADMIN_PORT=$GATEHOUSE_REDIS_ADMIN_PORT
    local gatehouse_root_extra=$gatehouse_redis_root_extra
    start_gatehouse
}

# A redis-server of our own on a free loopback port: no persistence (no RDB, no AOF), in the
# foreground (so spawn can stop it), its files in $TMP/redis. The system's redis service, if
# any, is never used, started or stopped. Sets REDIS_PID, REDIS_CLI.
REDIS_PID=""
REDIS_CLI=""
start_redis() { # needs REDIS_PORT
    local bin d=$TMP/redis
    bin=$(command -v redis-server || true)
    if [[ -z "$bin" ]]; then
        log "installing redis-server (apt)"
        [[ $(id -u) -eq 0 ]] || { log "need root to apt-get install redis-server"; return 1; }
        # The package would start its own service on 6379 where invoke-rc.d allows it; a
        # temporary policy-rc.d (only if none exists) forbids that.
        local policy_added=0
        if [[ ! -e /usr/sbin/policy-rc.d ]]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy_added=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null || true
        [[ $policy_added -eq 1 ]] && rm -f /usr/sbin/policy-rc.d
        bin=$(command -v redis-server || true)
        [[ -n "$bin" ]] || { log "cannot install redis-server"; return 1; }
    fi
    REDIS_CLI=$(command -v redis-cli || true)
    [[ -n "$REDIS_CLI" ]] || { log "redis-cli is missing (package redis-tools)"; return 1; }
    mkdir -p "$d"
    spawn "$bin" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
        --dir "$d" --logfile "$d/redis.log"
    REDIS_PID=$SPAWNED_PID
    local i
    for i in $(seq 1 100); do   # 10 s
        [[ "$("$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" PING 2>/dev/null)" == PONG ]] && return 0
        kill -0 "$REDIS_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$d/redis.log" >&2 2>/dev/null || true
    stop_group "$REDIS_PID"
    REDIS_PID=""
    return 1
}

# Commands the Redis server has executed so far, from INFO commandstats:
# "EVALSHA EVAL SET TIME GET TOTAL ALL", TOTAL being calls + rejected_calls of every command
# except INFO (ours), ALL each command's as name=count,name=count,... Redis counts the commands a Lua script runs (redis.call) like a
# client's: Gatehouse's GCRA script runs TIME, GET and (when it admits) SET inside each
# EVALSHA, so TOTAL is not the round trips; see redis_monitor_probe. Fails if the server
# does not answer.
redis_cmdstats() {
    "$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" INFO commandstats 2>/dev/null | tr -d '\r' | awk -F'[:,=]' '
        /^cmdstat_/ {
            name = substr($1, 9); calls = 0; rejected = 0
            for (i = 2; i < NF; i += 2) {
                if ($i == "calls") calls = $(i + 1)
                if ($i == "rejected_calls") rejected = $(i + 1)
            }
            if (name != "info") { total += calls + rejected; all = all (all == "" ? "" : ",") name "=" calls + rejected }
            if (name == "evalsha") evalsha = calls
            if (name == "eval") eval_ = calls
            if (name == "set") set_ = calls
            if (name == "time") time_ = calls
            if (name == "get") get_ = calls
        }
        END { printf "%d %d %d %d %d %d %s\n", evalsha, eval_, set_, time_, get_, total, (all == "" ? "-" : all) }'
}

# Round trips, exactly: MONITOR shows each command with its origin, "[0 127.0.0.1:PORT]" for
# a client's and "[0 lua]" for one a script ran. While it watches, gh-load sends a bounded
# number of requests through URL; prints "REQUESTS CLIENT_COMMANDS SCRIPT_COMMANDS". Not
# during a measured run: MONITOR costs Redis (and the machine) a lot.
redis_cmdstats_delta() { # "ALL" before, "ALL" after -> the commands whose count grew, "name=n,..." ("-": none)
    awk -v a="$1" -v b="$2" 'BEGIN {
        n = split(a, x, ","); for (i = 1; i <= n; i++) { split(x[i], kv, "="); before[kv[1]] = kv[2] }
        n = split(b, x, ","); out = ""
        for (i = 1; i <= n; i++) { split(x[i], kv, "="); d = kv[2] - before[kv[1]]; if (kv[1] != "-" && d > 0) out = out (out == "" ? "" : ",") kv[1] "=" d }
        print (out == "" ? "-" : out) }'
}

redis_monitor_probe() { # url requests gh-load-args...
    local url=$1 n=$2 f=$TMP/redis/monitor.txt line reqs mon
    shift 2
    spawn timeout 30 "$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" MONITOR >"$f" 2>&1
    mon=$SPAWNED_PID
    for _ in $(seq 1 50); do grep -q '^OK' "$f" 2>/dev/null && break; sleep 0.1; done
    line=$("$GH_LOAD" --url "$url" "$@" --connections "$CONNECTIONS" --max-requests "$n" --duration 20 2>/dev/null | tail -n 1)
    sleep 0.5   # the last commands reach the monitor
    stop_group "$mon"
    reqs=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' <<<"$line")
    echo "${reqs:-0} $(grep -c '\[[0-9]* [0-9.]*:[0-9]*\]' "$f" || true) $(grep -c '\[[0-9]* lua\]' "$f" || true)"
}

# ---------------------------------------------------------------------------
# GitHub webhooks (the webhook scenarios). The secret is $TMP/webhook/secret (64 hex
# characters, no trailing newline), read by Gatehouse (`file:`) and gh-load
# (`--webhook-github-secret file:...`).
# ---------------------------------------------------------------------------
make_webhook_secret() {
    mkdir -p "$TMP/webhook"
    printf '%s' "$(openssl rand -hex 32)" >"$TMP/webhook/secret"
    chmod 600 "$TMP/webhook/secret"
}

# The POST /hook route with and without the webhook requirement. Both Gatehouses get
# state.max_entries 4,000,000: every delivery leaves two replay keys for `tolerance` (30 s),
# so the default 1,000,000 would fill at ~16k deliveries/s.
use_gatehouse_webhook() {
    gatehouse_root_extra+="
state:
  max_entries: 4000000"
    local route="  - name: hook
    match:
      path: /hook
      methods: [POST]
    upstream: origin"
    gatehouse_routes_extra="$route
    webhook:
      scheme: github
      secrets: [\"file:$TMP/webhook/secret\"]
      tolerance: 30s
      max_body: 512KiB"
    gatehouse_nowebhook_routes_extra="$route
    max_body_bytes: 512KiB"
}

# Writes one GitHub delivery of SIZE bytes for curl: DIR/body and DIR/headers (header
# lines for curl -H @file). KIND good signs it with the secret, bad with a wrong one.
# Every call makes a new body and delivery id (the gateway refuses replays).
make_webhook_delivery() { # dir size good|bad
    mkdir -p "$1"
    python3 - "$1" "$2" "$3" "$TMP/webhook/secret" <<'PYEOF'
import hashlib, hmac, os, sys
d, size, kind, secret_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
secret = open(secret_file, "rb").read()
if kind == "bad":
    secret = secret + b"x"
nonce = os.urandom(8).hex()
head = '{"check":"' + nonce + '","zen":"'
body = (head + "b" * (size - len(head) - 2) + '"}').encode()
assert len(body) == size, len(body)
open(os.path.join(d, "body"), "wb").write(body)
sig = hmac.new(secret, body, hashlib.sha256).hexdigest()
with open(os.path.join(d, "headers"), "w") as f:
    f.write("Content-Type: application/json\n")
    f.write("X-GitHub-Event: push\n")
    f.write("X-GitHub-Delivery: check-" + nonce + "\n")
    f.write("X-Hub-Signature-256: sha256=" + sig + "\n")
PYEOF
}

# ---------------------------------------------------------------------------
# Bearer tokens (RS256) for the token scenarios, made by tools/make-tokens.py in
# $TMP/tokens: signing.key, public.pem, jwks.json, token.txt, bad-signature.txt and,
# with a count, fresh.txt (that many tokens, each with its own jti).
# ---------------------------------------------------------------------------
TOKEN_ISSUER_URL=https://idp.bench
TOKEN_AUDIENCE=bench
make_tokens() { # [fresh count]
    log "making RS256 tokens${1:+ ($1 fresh ones)}"
    # The Debian package is enough (no pip on a fresh machine needed).
    if ! python3 -c 'import cryptography' 2>/dev/null; then
        [[ $(id -u) -eq 0 ]] || die "need root to apt-get install python3-cryptography"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-cryptography >/dev/null \
            || die "cannot install python3-cryptography"
    fi
    python3 "$BENCH_DIR/tools/make-tokens.py" "$TMP/tokens" --fresh "${1:-0}" \
        --issuer "$TOKEN_ISSUER_URL" --audience "$TOKEN_AUDIENCE" --lifetime 7200 \
        || die "tools/make-tokens.py failed"
}

# The Gatehouse token requirement: issuer bench-idp (the JWKS above, RS256 only) on the route.
use_gatehouse_token() {
    gatehouse_root_extra+="
issuers:
  bench-idp:
    issuer: $TOKEN_ISSUER_URL
    jwks_file: $TMP/tokens/jwks.json
    audiences: [$TOKEN_AUDIENCE]
    algorithms: [RS256]"
    gatehouse_route_extra+="
    token: { issuer: bench-idp }"
}

# ---------------------------------------------------------------------------
# HAProxy (Debian's haproxy 2.6): TLS termination with a required client certificate
# (verify required, against the same CA), and the bearer token checked on every request
# with jwt_verify (RS256, public.pem) plus alg, iss, aud and exp; any failure is a 401.
# Upstream connections are kept alive and reused (http-reuse always). No access log.
# ---------------------------------------------------------------------------
HAPROXY_THREADS=${HAPROXY_THREADS:-$WORKERS}
start_haproxy() { start_haproxy_instance haproxy "$HAPROXY_PORT" 1; }
# The same HAProxy without the token rules: what the token check costs HAProxy.
start_haproxy_notoken() { start_haproxy_instance haproxy-notoken "$HAPROXY_NOTOKEN_PORT" 0; }
start_haproxy_instance() { # name port check-tokens(0|1); needs UPSTREAM_PORT, $TMP/tokens
    local name=$1 port=$2 jwt=$3
    local d=$TMP/$name bin rules=""
    bin=$(command -v haproxy || echo /usr/sbin/haproxy)
    if [[ ! -x "$bin" ]]; then
        log "installing haproxy (apt)"
        [[ $(id -u) -eq 0 ]] || { log "need root to apt-get install haproxy"; return 1; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null || return 1
        bin=$(command -v haproxy || echo /usr/sbin/haproxy)
    fi
    mkdir -p "$d"
    cat "$TMP/pki/server.pem" "$TMP/pki/server.key" >"$d/server-with-key.pem"
    [[ $jwt -eq 1 ]] && rules="    http-request set-var(txn.bearer) http_auth_bearer
    http-request deny status 401 unless { var(txn.bearer) -m found }
    http-request set-var(txn.jwt_alg) var(txn.bearer),jwt_header_query('\$.alg')
    http-request deny status 401 unless { var(txn.jwt_alg) -m str RS256 }
    http-request deny status 401 unless { var(txn.bearer),jwt_payload_query('\$.iss') -m str $TOKEN_ISSUER_URL }
    http-request deny status 401 unless { var(txn.bearer),jwt_payload_query('\$.aud') -m str $TOKEN_AUDIENCE }
    http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
    http-request set-var(txn.now) date()
    http-request deny status 401 unless { var(txn.exp),sub(txn.now) -m int gt 0 }
    http-request deny status 401 unless { var(txn.bearer),jwt_verify(txn.jwt_alg,\"$TMP/tokens/public.pem\") -m int 1 }"
    cat >"$d/haproxy.cfg" <<EOF
global
    nbthread $HAPROXY_THREADS
    maxconn 8192
    ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout http-keep-alive 120s
    option http-keep-alive

frontend public
    bind 127.0.0.1:$port ssl crt $d/server-with-key.pem ca-file $TMP/pki/ca.pem verify required
$rules
    default_backend origin

backend origin
    http-reuse always
    server up 127.0.0.1:$UPSTREAM_PORT
EOF
    "$bin" -c -f "$d/haproxy.cfg" >"$d/check.log" 2>&1 || { cat "$d/check.log" >&2; return 1; }
    spawn "$bin" -db -f "$d/haproxy.cfg" >"$d/stdout.log" 2>"$d/stderr.log"
    PEER_PID[$name]=$SPAWNED_PID
    wait_tcp "$port" 10 || { cat "$d/stderr.log" >&2; stop_group "${PEER_PID[$name]}"; return 1; }
}

# Prints the last lines of Gatehouse's output (after a failed start), indented.
show_gatehouse_output() {
    local f
    for f in "$TMP/gatehouse/stdout.log" "$TMP/gatehouse/stderr.log"; do
        [[ -s "$f" ]] && tail -n 20 "$f" | sed "s/^/    gatehouse $(basename "$f" .log): /" >&2
    done
    return 0
}

# ---------------------------------------------------------------------------
# /proc accounting over a process tree (the process and all its descendants:
# nginx master + workers; Gatehouse and anything it forks).
# ---------------------------------------------------------------------------
tree_pids() { # root pid -> it and all descendants, one per line
    [[ -n "$1" ]] || return 0
    kill -0 "$1" 2>/dev/null || return 0
    echo "$1"
    local child
    for child in $(pgrep -P "$1" 2>/dev/null || true); do tree_pids "$child"; done
}
proc_ticks() { # pid -> utime+stime of that process (all its threads), in clock ticks
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    rest=${stat##*) }            # fields from 3 (state) on; comm may hold spaces
    # shellcheck disable=SC2086
    set -- $rest
    echo $(( ${12} + ${13} ))    # fields 14 and 15
}
tree_ticks() { # root pid -> CPU ticks of the whole tree (0 for an empty pid)
    local total=0 pid
    for pid in $(tree_pids "$1"); do total=$(( total + $(proc_ticks "$pid") )); done
    echo "$total"
}
proc_status_kib() { # pid field (VmRSS, VmHWM, RssAnon, ...) -> KiB, 0 if unknown
    local v
    v=$(awk -v key="$2:" '$1 == key { print $2; exit }' "/proc/$1/status" 2>/dev/null) || v=""
    echo "${v:-0}"
}
tree_rss_kib() { # root pid -> VmRSS summed over the tree, KiB
    local total=0 pid
    for pid in $(tree_pids "$1"); do total=$(( total + $(proc_status_kib "$pid" VmRSS) )); done
    echo "$total"
}
tree_status_sum_kib() { # root pid field -> that /proc/PID/status field summed over the tree, KiB
    local total=0 pid
    for pid in $(tree_pids "$1"); do total=$(( total + $(proc_status_kib "$pid" "$2") )); done
    echo "$total"
}
tree_fd_count() { # root pid -> open file descriptors over the tree
    local total=0 pid n
    for pid in $(tree_pids "$1"); do
        n=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
        total=$(( total + n ))
    done
    echo "$total"
}
established_on_port() { # port -> established TCP connections whose local port is PORT
    ss -Htn state established "( sport = :$1 )" 2>/dev/null | wc -l
}
