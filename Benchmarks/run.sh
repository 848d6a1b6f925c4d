#!/usr/bin/env bash
# Gatehouse vs nginx (and, in the token scenarios, HAProxy) benchmark harness.
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

# shellcheck source=lib/common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/common.sh"

ROUNDS=5
SECONDS_PER_RUN=10
CONNECTIONS=32
WARMUP=1
LOADGEN_THREADS=1
SCENARIO=tls-keepalive
MAX_REQUESTS=10000000
FRESH_TOKENS=50000

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
  --fresh-tokens N     token-fresh: distinct tokens to make (default $FRESH_TOKENS; more than
                       Gatehouse's verified-token cache holds, 10,000)
  --gatehouse PATH     gatehouse binary (default: build .build/release/gatehouse)
  --skip-gatehouse     run only nginx and direct
  --baseline PATH      another gatehouse binary (e.g. the previous commit's), run as peer
                       gatehouse-baseline with the same configuration, interleaved with the
                       others; the summary adds its ratio (an A/B of two builds in one run)
  --peers LIST         comma-separated subset of the scenario's peers (e.g. gatehouse,nginx)
  --floor              add peer nio-floor (tls-/mtls-keepalive, token-repeated/-fresh): gh-floor, a
                       minimal SwiftNIO + NIOSSL reverse proxy that checks nothing (it relays the
                       token unread), the floor of Gatehouse's stack
  --nginx-json-log     the nginx proxy writes a JSON access-log line per request (buffered), as
                       Gatehouse writes a decision record (default: access_log off)
  --keep               keep the temporary directory (configs, logs)
EOF
}

# ---------------------------------------------------------------------------
# Scenarios. A scenario sets:
#   SCENARIO_DESC        one line for the report
#   SCENARIO_PEERS       peers that take part, from: direct nginx gatehouse
#                        (add a peer by writing start_<peer>, see lib/common.sh)
#   SCENARIO_UNIT        what one completed request stands for in the table:
#                        "req" (default) or "handshake" (a new connection per request)
#   SCENARIO_TARGETS     issue targets checked in the summary, each "KEY OP FACTOR [PEER BASE]":
#                        PEER/BASE ratio (default gatehouse/nginx) of the median KEY
#                        (a rounds.jsonl field) must be <= or >= FACTOR
#   SCENARIO_RATIOS      peer pairs "PEER BASE" whose ratio line the summary prints
#                        (default "gatehouse nginx")
#   TOKENS_FILE          optional: gh-load --tokens-file; each peer's runs then continue
#                        where its previous run stopped (--tokens-offset), so no token
#                        repeats before the whole file has been used against that peer
#   LOADGEN_ARGS         gh-load arguments common to every peer
#   peer_url[PEER]       URL gh-load drives for that peer
#   peer_args[PEER]      extra gh-load arguments for that peer (e.g. trust, client cert)
# and may change the proxies' configuration (lib/common.sh): NGINX_PROXY_EXTRA
# (lines in nginx's server {} block) and gatehouse_root_extra,
# gatehouse_listener_extra, gatehouse_listener_tls_extra, gatehouse_route_extra
# (YAML lines in Gatehouse's config); use_mtls sets all of them for mTLS.
# It runs after the PKI, the ports and the 1 KiB file exist ($TMP, *_PORT).
# ---------------------------------------------------------------------------
list_scenarios() { declare -F | awk '{print $3}' | sed -n 's/^scenario_//p' | tr '_' '-'; }

scenario_tls_keepalive() {
    SCENARIO_DESC="keep-alive HTTPS GET of a 1 KiB body; $CONNECTIONS connections, one request in flight each"
    SCENARIO_PEERS=(direct nginx gatehouse)
    SCENARIO_UNIT=req
    SCENARIO_TARGETS=()
    SCENARIO_RATIOS=("gatehouse nginx")
    TOKENS_FILE=""
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
    SCENARIO_UNIT=handshake
    LOADGEN_ARGS+=(--new-connection)
}

# Client certificates (X.509-SVID, see make_pki): nginx verifies the chain against the
# throwaway CA (ssl_verify_client on); Gatehouse requires a client certificate, verifies
# it as an SVID against the trust domain's bundle (the same CA) and allows the route only
# to the client's SPIFFE ID (use_mtls in lib/common.sh). direct stays plain HTTP.
scenario_mtls_keepalive() {
    scenario_tls_keepalive
    SCENARIO_DESC="keep-alive HTTPS GET of a 1 KiB body with a client certificate (mTLS); $CONNECTIONS connections"
    SCENARIO_TARGETS=("proxy_cpu_us_per_req <= 1.30")
    local client="--cert $TMP/pki/client.pem --key $TMP/pki/client.key"
    peer_args[nginx]+=" $client"
    peer_args[gatehouse]+=" $client"
    use_mtls
}

# A new mTLS connection per request: full handshake with client-certificate
# verification, no resumption. Handshakes/s = requests/s.
scenario_mtls_handshake() {
    scenario_mtls_keepalive
    SCENARIO_DESC="a new mTLS connection per request (full handshake with a client certificate, no resumption); $CONNECTIONS concurrent"
    SCENARIO_UNIT=handshake
    SCENARIO_TARGETS=("rps >= 1.00")
    LOADGEN_ARGS+=(--new-connection)
}

# Bearer tokens (issue 4), all peers with the client certificate (mTLS) and keep-alive:
#   gatehouse          the route requires an RS256 token of issuer bench-idp (JWKS file)
#   gatehouse-notoken  the same Gatehouse configuration without the token requirement
#   haproxy            HAProxy 2.6 (Debian), verify required + jwt_verify, alg/iss/aud/exp
# Every request carries the same token (token-repeated: Gatehouse's verified-token cache
# answers after the first) or a different one (token-fresh: a signature check each time).
scenario_token_repeated() {
    scenario_mtls_keepalive
    SCENARIO_DESC="mTLS keep-alive GET of 1 KiB with an RS256 bearer token, the same token on every request; $CONNECTIONS connections"
    SCENARIO_PEERS=(gatehouse gatehouse-notoken haproxy haproxy-notoken)
    SCENARIO_RATIOS=("gatehouse gatehouse-notoken" "gatehouse haproxy" "haproxy haproxy-notoken")
    SCENARIO_TARGETS=("proxy_cpu_us_per_req <= 1.10 gatehouse gatehouse-notoken"
                      "proxy_cpu_us_per_req <= 0.50 gatehouse haproxy")
    local client="--ca $TMP/pki/ca.pem --cert $TMP/pki/client.pem --key $TMP/pki/client.key"
    peer_url[gatehouse-notoken]="https://127.0.0.1:$GATEHOUSE_NOTOKEN_PORT/1k.bin"
    peer_args[gatehouse-notoken]=$client
    peer_url[haproxy]="https://127.0.0.1:$HAPROXY_PORT/1k.bin"
    peer_args[haproxy]=$client
    peer_url[haproxy-notoken]="https://127.0.0.1:$HAPROXY_NOTOKEN_PORT/1k.bin"
    peer_args[haproxy-notoken]=$client
    make_tokens
    gatehouse_notoken_route_extra=$gatehouse_route_extra   # mTLS peer, no token
    use_gatehouse_token
    CHECK_ARGS=(--header "Authorization: Bearer $(cat "$TMP/tokens/token.txt")")
    LOADGEN_ARGS+=("${CHECK_ARGS[@]}")
}

scenario_token_fresh() {
    scenario_token_repeated
    SCENARIO_DESC="mTLS keep-alive GET of 1 KiB with an RS256 bearer token, a different token on every request ($FRESH_TOKENS cycled); $CONNECTIONS connections"
    SCENARIO_TARGETS=()   # informative: no target
    make_tokens "$FRESH_TOKENS"
    LOADGEN_ARGS=("${LOADGEN_ARGS[@]:0:${#LOADGEN_ARGS[@]}-2}")   # without the repeated token's --header
    CHECK_ARGS=()
    TOKENS_FILE=$TMP/tokens/fresh.txt
}

# GitHub webhooks (issue 5): keep-alive HTTPS (server-only TLS, no client certificate:
# webhook senders such as GitHub do not present one) POSTs of GitHub-signed deliveries to
# /hook, each one distinct (gh-load --webhook-github-secret; a new delivery id and body
# every time, since the gateway refuses replays):
#   gatehouse            route POST /hook with webhook: { scheme: github, secrets: [file:…],
#                        tolerance: 30s, max_body: 512KiB }: buffers, verifies the
#                        HMAC-SHA256, records two replay keys, forwards the body
#   gatehouse-nowebhook  the same configuration, the route without webhook: (max_body_bytes:
#                        512KiB): streams the same body to the upstream
# The upstream nginx reads every body and answers 200 "ok" (location = /hook).
scenario_webhook_1k() { webhook_scenario 1024 "1 KiB"; }
scenario_webhook_256k() { webhook_scenario 262144 "256 KiB"; }
webhook_scenario() { # body-bytes label
    scenario_tls_keepalive
    SCENARIO_DESC="keep-alive HTTPS POST of a GitHub-signed webhook delivery, $2 JSON body, a different delivery every request; $CONNECTIONS connections"
    SCENARIO_PEERS=(gatehouse gatehouse-nowebhook)
    SCENARIO_RATIOS=("gatehouse gatehouse-nowebhook")
    SCENARIO_TARGETS=()
    # Issue 5: verified deliveries/s >= 0.8 x the same route without the webhook, for 1 KiB.
    # For 256 KiB the issue asks only for the ratio (and the MB/s hashed, in the summary).
    [[ $1 -eq 1024 ]] && SCENARIO_TARGETS=("rps >= 0.80 gatehouse gatehouse-nowebhook")
    WEBHOOK_BODY_BYTES=$1
    peer_url[gatehouse]="https://127.0.0.1:$GATEHOUSE_PORT/hook"
    peer_url[gatehouse-nowebhook]="https://127.0.0.1:$GATEHOUSE_NOWEBHOOK_PORT/hook"
    peer_args[gatehouse-nowebhook]="--ca $TMP/pki/ca.pem"
    make_webhook_secret
    use_gatehouse_webhook
    CHECK_ARGS=(--webhook-github-secret "file:$TMP/webhook/secret" --body-size "$1")
    LOADGEN_ARGS+=("${CHECK_ARGS[@]}")
}

# Rate limits (issue 6): the tls-keepalive GET of 1 KiB (server-only TLS) on a route with a
# rate limit high enough to admit every request (key ip, 1,000,000/s, burst 1,000,000), so
# each request pays the GCRA cell update and nothing else changes:
#   gatehouse          rate_limit: bench, in-memory store (default state)
#   gatehouse-nolimit  the same configuration without the rate limit
#   gatehouse-redis    gatehouse with state: { backend: redis, address: 127.0.0.1:REDIS_PORT,
#                      timeout: 50ms } against a redis-server started here; the Redis
#                      commands of each measured run (INFO commandstats before and after,
#                      less those the GCRA script runs) give round trips per request
#                      (issue 6: one), checked exactly by a MONITOR probe before the rounds
scenario_ratelimit() {
    scenario_tls_keepalive
    SCENARIO_DESC="keep-alive HTTPS GET of a 1 KiB body on a rate-limited route (GCRA, key ip, $RATELIMIT_RATE/s: every request admitted); $CONNECTIONS connections"
    SCENARIO_PEERS=(gatehouse gatehouse-nolimit gatehouse-redis)
    SCENARIO_RATIOS=("gatehouse gatehouse-nolimit" "gatehouse-redis gatehouse-nolimit")
    # Informative: the in-memory limit should cost little.
    SCENARIO_TARGETS=("rps >= 0.90 gatehouse gatehouse-nolimit")
    peer_url[gatehouse-nolimit]="https://127.0.0.1:$GATEHOUSE_NOLIMIT_PORT/1k.bin"
    peer_args[gatehouse-nolimit]="--ca $TMP/pki/ca.pem"
    peer_url[gatehouse-redis]="https://127.0.0.1:$GATEHOUSE_REDIS_PORT/1k.bin"
    peer_args[gatehouse-redis]="--ca $TMP/pki/ca.pem"
    use_gatehouse_ratelimit
    RATELIMIT_SCENARIO=1
}

# Policy rollout (issue 7): the mtls-keepalive GET with a candidate policy that every
# request is also judged by, in shadow (the stable policy decides):
#   gatehouse          rollout: { mode: shadow } with a candidate file (the same route, a
#                      wider peers list) and auto_rollback, so each request pays the second
#                      route match, the candidate's peer check and the window's counting
#   gatehouse-nolimit  labelled "gatehouse (no candidate)": the same configuration without
#                      `rollout`
scenario_rollout_shadow() {
    scenario_mtls_keepalive
    SCENARIO_DESC="keep-alive HTTPS GET of a 1 KiB body with a client certificate (mTLS), a candidate policy evaluated in shadow on every request; $CONNECTIONS connections"
    SCENARIO_PEERS=(gatehouse gatehouse-nolimit)
    SCENARIO_RATIOS=("gatehouse gatehouse-nolimit")
    # Issue 7: a candidate in shadow costs at most 15% of throughput.
    SCENARIO_TARGETS=("rps >= 0.85 gatehouse gatehouse-nolimit")
    PEER_LABEL[gatehouse-nolimit]="gatehouse (no candidate)"
    peer_url[gatehouse-nolimit]="https://127.0.0.1:$GATEHOUSE_NOLIMIT_PORT/1k.bin"
    peer_args[gatehouse-nolimit]=${peer_args[gatehouse]}
    use_gatehouse_rollout
}

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
        --fresh-tokens) FRESH_TOKENS=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        --scenario) SCENARIO=$2; shift 2 ;;
        --gatehouse) GATEHOUSE=$2; shift 2 ;;
        --skip-gatehouse) SKIP_GATEHOUSE=1; shift ;;
        --baseline) BASELINE_GATEHOUSE=$2; shift 2 ;;
        --floor) WITH_FLOOR=1; shift ;;
        --peers) ONLY_PEERS=$2; shift 2 ;;
        --nginx-json-log) NGINX_JSON_LOG=1; shift ;;
        --keep) KEEP_TMP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
SCENARIO_FN="scenario_${SCENARIO//-/_}"
if ! declare -F "$SCENARIO_FN" >/dev/null; then
    echo "unknown scenario '$SCENARIO'; known: $(list_scenarios | tr '\n' ' ')" >&2; exit 2
fi
for n in "$FRESH_TOKENS" "$ROUNDS" "$CONNECTIONS" "$LOADGEN_THREADS" "$MAX_REQUESTS" "$WORKERS"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "expected a positive integer, got '$n'" >&2; exit 2; }
done
for s in "$SECONDS_PER_RUN" "$WARMUP"; do
    [[ "$s" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "expected seconds, got '$s'" >&2; exit 2; }
done

bench_init   # traps, tools, gh-load, $TMP with the PKI and the 1 KiB body
read -r UPSTREAM_PORT NGINX_PORT GATEHOUSE_PORT GATEHOUSE_ADMIN_PORT \
    GATEHOUSE_NOTOKEN_PORT GATEHOUSE_NOTOKEN_ADMIN_PORT HAPROXY_PORT HAPROXY_NOTOKEN_PORT \
    GATEHOUSE_NOWEBHOOK_PORT GATEHOUSE_NOWEBHOOK_ADMIN_PORT \
    GATEHOUSE_NOLIMIT_PORT GATEHOUSE_NOLIMIT_ADMIN_PORT GATEHOUSE_REDIS_PORT GATEHOUSE_REDIS_ADMIN_PORT \
    REDIS_PORT GATEHOUSE_BASELINE_PORT GATEHOUSE_BASELINE_ADMIN_PORT NIO_FLOOR_PORT <<<"$(free_ports 18)"

declare -A peer_url peer_args PEER_LABEL
CHECK_ARGS=()   # gh-load arguments of the one-request check besides URL and peer_args
WEBHOOK_BODY_BYTES=""   # webhook scenarios: the body size (the summary adds MB/s)
RATELIMIT_SCENARIO=""   # ratelimit scenario: RateLimit-Policy checks, Redis commands per request
REDIS_PROBE=""          # ratelimit scenario: "requests client-commands script-commands" (MONITOR)
# Row labels in the table (a new peer without one shows its name).
PEER_LABEL[direct]="direct (HTTP, no TLS)"
PEER_LABEL[nginx]="nginx"
PEER_LABEL[gatehouse]="gatehouse"
PEER_LABEL[gatehouse-notoken]="gatehouse (no token)"
PEER_LABEL[haproxy]="haproxy"
PEER_LABEL[haproxy-notoken]="haproxy (no token)"
PEER_LABEL[gatehouse-nowebhook]="gatehouse (no webhook)"
PEER_LABEL[gatehouse-nolimit]="gatehouse (no limit)"
PEER_LABEL[gatehouse-redis]="gatehouse (redis)"
PEER_LABEL[gatehouse-baseline]="gatehouse (baseline)"
PEER_LABEL[nio-floor]="nio-floor (checks nothing)"
"$SCENARIO_FN"
if [[ -n "${NGINX_JSON_LOG:-}" ]]; then   # an access log as close to a decision record as nginx gets
    # shellcheck disable=SC2016  # nginx variables, not the shell's
    NGINX_HTTP_EXTRA+='
    log_format decision escape=json
        '"'"'{"ts":"$time_iso8601","request_id":"$request_id","method":"$request_method","path":"$uri",'"'"'
        '"'"'"client_ip":"$remote_addr","peer":"$ssl_client_s_dn","status":$status,'"'"'
        '"'"'"upstream":"$upstream_addr","upstream_status":"$upstream_status","duration_ms":$request_time}'"'"';'
    NGINX_ACCESS_LOG="$TMP/nginx-proxy/access.jsonl decision buffer=64k flush=1s"
    PEER_LABEL[nginx]="nginx (JSON log)"
fi
if [[ -n "$BASELINE_GATEHOUSE" ]]; then   # the same requests as peer gatehouse, another binary
    [[ -x "$BASELINE_GATEHOUSE" ]] || die "--baseline $BASELINE_GATEHOUSE is not an executable file"
    SCENARIO_PEERS+=(gatehouse-baseline)
    peer_url[gatehouse-baseline]=${peer_url[gatehouse]/:$GATEHOUSE_PORT\//:$GATEHOUSE_BASELINE_PORT\/}
    peer_args[gatehouse-baseline]=${peer_args[gatehouse]}
    SCENARIO_RATIOS+=("gatehouse gatehouse-baseline")
fi
if [[ -n "$WITH_FLOOR" ]]; then   # the stack's floor, same URL path and client arguments as nginx
    case $SCENARIO in
        tls-keepalive | mtls-keepalive) SCENARIO_RATIOS+=("nio-floor nginx" "gatehouse nio-floor") ;;
        # The floor relays the bearer token without looking at it: what HAProxy's and
        # Gatehouse's token checks leave of the stack's cost.
        token-repeated | token-fresh) SCENARIO_RATIOS+=("nio-floor haproxy" "nio-floor haproxy-notoken" "gatehouse nio-floor") ;;
        *) die "--floor is for tls-keepalive, mtls-keepalive, token-repeated and token-fresh" ;;
    esac
    SCENARIO_PEERS+=(nio-floor)
    peer_url[nio-floor]=${peer_url[nginx]/:$NGINX_PORT\//:$NIO_FLOOR_PORT\/}
    peer_args[nio-floor]=${peer_args[nginx]}
fi
if [[ -n "$ONLY_PEERS" ]]; then
    kept=()
    for peer in "${SCENARIO_PEERS[@]}"; do
        [[ ",$ONLY_PEERS," == *",$peer,"* ]] && kept+=("$peer")
    done
    [[ ${#kept[@]} -gt 0 ]] || die "--peers $ONLY_PEERS names none of this scenario's peers: ${SCENARIO_PEERS[*]}"
    SCENARIO_PEERS=("${kept[@]}")
fi

# ---------------------------------------------------------------------------
# Start everything
# ---------------------------------------------------------------------------
log "scenario $SCENARIO: $SCENARIO_DESC"
log "temp dir $TMP; ports upstream=$UPSTREAM_PORT nginx=$NGINX_PORT gatehouse=$GATEHOUSE_PORT admin=$GATEHOUSE_ADMIN_PORT gatehouse-notoken=$GATEHOUSE_NOTOKEN_PORT admin=$GATEHOUSE_NOTOKEN_ADMIN_PORT haproxy=$HAPROXY_PORT haproxy-notoken=$HAPROXY_NOTOKEN_PORT gatehouse-nowebhook=$GATEHOUSE_NOWEBHOOK_PORT admin=$GATEHOUSE_NOWEBHOOK_ADMIN_PORT gatehouse-nolimit=$GATEHOUSE_NOLIMIT_PORT admin=$GATEHOUSE_NOLIMIT_ADMIN_PORT gatehouse-redis=$GATEHOUSE_REDIS_PORT admin=$GATEHOUSE_REDIS_ADMIN_PORT redis=$REDIS_PORT"
start_upstream
ACTIVE_PEERS=()
SKIPPED_NOTES=()
for peer in "${SCENARIO_PEERS[@]}"; do
    if "start_${peer//-/_}"; then
        ACTIVE_PEERS+=("$peer")
    else
        reason="failed to start"
        [[ $peer == gatehouse* ]] && reason=$GATEHOUSE_SKIP_REASON
        SKIPPED_NOTES+=("$peer SKIPPED: $reason")
        log "*** $peer SKIPPED: $reason"
        [[ $peer == gatehouse ]] && show_gatehouse_output
    fi
done
[[ ${#ACTIVE_PEERS[@]} -gt 0 ]] || die "no peer could start"

# A one-request check per peer, so a misconfiguration fails loudly, not as a slow run.
declare -A TOKEN_CURSOR   # per peer: where its next run starts in TOKENS_FILE
tokens_args() { # peer -> gh-load token arguments (none without TOKENS_FILE)
    [[ -n "$TOKENS_FILE" ]] && echo "--tokens-file $TOKENS_FILE --tokens-offset ${TOKEN_CURSOR[$1]:-0}"
    return 0
}
tokens_used() { # peer gh-load-json: advance its cursor past every token the run could have sent
    [[ -n "$TOKENS_FILE" ]] || return 0
    local r e
    r=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' <<<"$2"); e=$(sed -n 's/.*"errors":\([0-9]*\).*/\1/p' <<<"$2")
    TOKEN_CURSOR[$1]=$(( ${TOKEN_CURSOR[$1]:-0} + ${r:-0} + ${e:-0} + CONNECTIONS ))
}
for peer in "${ACTIVE_PEERS[@]}"; do
    # shellcheck disable=SC2086
    check=$("$GH_LOAD" --url "${peer_url[$peer]}" ${peer_args[$peer]} $(tokens_args "$peer") "${CHECK_ARGS[@]}" \
        --connections 1 --max-requests 1 --duration 5 2>&1 | tail -n 1)
    tokens_used "$peer" "$check"
    if [[ "$check" != *'"requests":1,"errors":0,"non2xx":0'* ]]; then
        if [[ $peer == gatehouse* ]]; then   # its reason code says why (e.g. a refused client certificate)
            tail -n 3 "$TMP/$peer/decisions.jsonl" 2>/dev/null | sed "s/^/    $peer decision: /" >&2 || true
            show_gatehouse_output
        fi
        die "$peer: a single request failed: $check"
    fi
done
# Token scenarios: a token with a broken signature must be refused with 401 by the peers
# that check tokens (and passed by those that do not: *-notoken, nio-floor).
if [[ -d "$TMP/tokens" ]]; then
    for peer in "${ACTIVE_PEERS[@]}"; do
        checks_tokens=1; [[ $peer == *-notoken || $peer == nio-floor ]] && checks_tokens=""
        want=401; [[ -z $checks_tokens ]] && want=200
        for kind in token bad-signature; do
            expect=$want; [[ $kind == token ]] && expect=200
            got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$TMP/pki/ca.pem" \
                --cert "$TMP/pki/client.pem" --key "$TMP/pki/client.key" \
                -H "Authorization: Bearer $(cat "$TMP/tokens/$kind.txt")" "${peer_url[$peer]}" || true)
            [[ "$got" == "$expect" ]] || die "$peer: a request with $kind.txt got HTTP $got, expected $expect"
            log "check $peer: $kind.txt -> HTTP $got (expected $expect)"
        done
        if [[ -n $checks_tokens ]]; then
            got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$TMP/pki/ca.pem" \
                --cert "$TMP/pki/client.pem" --key "$TMP/pki/client.key" "${peer_url[$peer]}" || true)
            [[ "$got" == 401 ]] || die "$peer: a request without a token got HTTP $got, expected 401"
            log "check $peer: no token -> HTTP $got (expected 401)"
        fi
    done
fi
# Webhook scenarios: through each peer, with curl: two good deliveries over one keep-alive
# connection (200 and 200, no second connection), then one signed with a wrong secret on a
# new connection (401 from the webhook route, 200 from the route without it); then the
# upstream must have received every forwarded body in full on reused connections (its /hook
# log). A last probe sends a wrong and then a good delivery on one connection and only
# reports what the second got (see the README: a refused delivery left its body behind).
webhook_curl() { # peer dir... -> "status connects " per delivery, all on one curl handle
    local peer=$1 first=1 args=() d
    shift
    for d in "$@"; do
        [[ $first -eq 1 ]] || args+=(--next)
        first=0
        args+=(--cacert "$TMP/pki/ca.pem" -o /dev/null -w '%{http_code} %{num_connects}\n'
               -H @"$d/headers" --data-binary @"$d/body" "${peer_url[$peer]}")
    done
    curl -s --max-time 10 "${args[@]}" | tr '\n' ' ' || true
}
if [[ -n "$WEBHOOK_BODY_BYTES" ]]; then
    for peer in "${ACTIVE_PEERS[@]}"; do
        want_bad=401; [[ $peer == *-nowebhook ]] && want_bad=200
        d=$TMP/check-$peer
        for i in 1 3 5; do make_webhook_delivery "$d/$i" "$WEBHOOK_BODY_BYTES" good; done
        for i in 2 4; do make_webhook_delivery "$d/$i" "$WEBHOOK_BODY_BYTES" bad; done
        got=$(webhook_curl "$peer" "$d/1" "$d/3")
        if [[ "$got" != "200 1 200 0 " ]]; then
            [[ $peer == gatehouse* ]] && tail -n 3 "$TMP/$peer/decisions.jsonl" 2>/dev/null | sed "s/^/    $peer decision: /" >&2
            die "$peer: two good deliveries of $WEBHOOK_BODY_BYTES bytes on one connection gave (status connects) '$got', expected '200 1 200 0 '"
        fi
        got=$(webhook_curl "$peer" "$d/2")
        if [[ "$got" != "$want_bad 1 " ]]; then
            [[ $peer == gatehouse* ]] && tail -n 3 "$TMP/$peer/decisions.jsonl" 2>/dev/null | sed "s/^/    $peer decision: /" >&2
            die "$peer: a delivery with a wrong signature gave (status connects) '$got', expected '$want_bad 1 '"
        fi
        log "check $peer: good, good -> 200, 200 on one connection; wrong signature -> $want_bad ($WEBHOOK_BODY_BYTES-byte bodies)"
        got=$(webhook_curl "$peer" "$d/4" "$d/5")
        if [[ "$got" == "$want_bad 1 200 0 " ]]; then
            log "check $peer: wrong signature then good on one connection -> $want_bad, 200"
        else
            die "$peer: wrong signature then good on one connection gave (status connects) '$got', expected '$want_bad 1 200 0 '"
        fi
    done
    sleep 1.5   # the upstream's /hook log is flushed every second
    hooklog=$TMP/nginx-upstream/hook.log
    # Every delivery the upstream saw (the one-request checks and the good curl ones) came
    # with Content-Length = the body size, was read in full before the answer
    # ($request_length >= it) and got 200, and upstream connections carried several.
    short=$(awk -v n="$WEBHOOK_BODY_BYTES" '$4 != n || $3 < n || $5 != 200' "$hooklog" | wc -l)
    total=$(wc -l <"$hooklog")
    reused=$(awk '$2 > 1' "$hooklog" | wc -l)
    [[ $total -gt 0 && $short -eq 0 ]] || die "upstream /hook log: $short of $total deliveries without the full $WEBHOOK_BODY_BYTES-byte body or not 200 (see $hooklog)"
    [[ $reused -gt 0 ]] || die "upstream /hook log: no upstream connection carried a second delivery (keep-alive to the upstream broken?)"
    log "check upstream: $total deliveries, each read in full ($WEBHOOK_BODY_BYTES bytes) and answered 200; $reused of them on a reused upstream connection"
fi

# Rate-limit scenario: with curl, a request through each rate-limited peer gets 200 with
# RateLimit-Policy "bench";q=1000000;w=1 and a RateLimit field, and its decision record says
# the store decided (store ok: not `error`, which would mean Redis did not answer and the
# request was admitted unchecked); gatehouse-nolimit answers 200 without those fields. For
# gatehouse-redis the request must also have reached Redis (EVALSHA/EVAL calls grew).
rate_record() { # peer request-id -> that request's decision record's rate_limit object, waiting up to 3 s
    local f=$TMP/$1/decisions.jsonl rec=""
    for _ in $(seq 1 30); do
        rec=$(tail -n 50 "$f" 2>/dev/null | grep -F "\"request_id\":\"$2\"" | grep -o '"rate_limit":{[^}]*}' || true)
        [[ -n "$rec" ]] && break
        sleep 0.1
    done
    echo "$rec"
}
if [[ -n "$RATELIMIT_SCENARIO" ]]; then
    want_policy="\"$RATELIMIT_NAME\";q=$RATELIMIT_RATE;w=1"
    for peer in "${ACTIVE_PEERS[@]}"; do
        [[ $peer == gatehouse-redis ]] && r0=$(redis_cmdstats)
        hdrs=$(curl -sS -D - -o /dev/null --max-time 5 --cacert "$TMP/pki/ca.pem" "${peer_url[$peer]}" | tr -d '\r' || true)
        status=$(head -n 1 <<<"$hdrs" | awk '{print $2}')
        policy=$(grep -i '^ratelimit-policy:' <<<"$hdrs" | sed 's/^[^:]*: *//' || true)
        rl=$(grep -i '^ratelimit:' <<<"$hdrs" | sed 's/^[^:]*: *//' || true)
        if [[ $peer == *-nolimit ]]; then
            [[ $status == 200 && -z "$policy" && -z "$rl" ]] \
                || die "$peer: a request got HTTP $status with RateLimit-Policy '$policy', RateLimit '$rl'; expected 200 without them"
            log "check $peer: HTTP $status, no RateLimit-Policy (expected: no limit)"
            continue
        fi
        if [[ $status != 200 || "$policy" != "$want_policy" || "$rl" != "\"$RATELIMIT_NAME\";r="* ]]; then
            tail -n 3 "$TMP/$peer/decisions.jsonl" 2>/dev/null | sed "s/^/    $peer decision: /" >&2 || true
            die "$peer: a request got HTTP $status with RateLimit-Policy '$policy', RateLimit '$rl'; expected 200 with RateLimit-Policy $want_policy"
        fi
        rid=$(grep -i '^x-request-id:' <<<"$hdrs" | sed 's/^[^:]*: *//' || true)
        rec=$(rate_record "$peer" "$rid")
        if [[ "$rec" != *'"store":"ok"'* ]]; then
            tail -n 3 "$TMP/$peer/decisions.jsonl" 2>/dev/null | sed "s/^/    $peer decision: /" >&2 || true
            die "$peer: the check request's decision record has rate_limit '$rec', expected store ok"
        fi
        extra=""
        if [[ $peer == gatehouse-redis ]]; then
            r1=$(redis_cmdstats)
            read -r es0 e0 s0 _ _ t0 _ <<<"$r0"; read -r es1 e1 s1 _ _ t1 _ <<<"$r1"
            [[ $(( es1 + e1 - es0 - e0 )) -gt 0 ]] \
                || die "$peer: the check request made no EVALSHA/EVAL call on Redis (before '$r0', after '$r1')"
            extra="; Redis executed $(( t1 - t0 )) command(s) for it (EVALSHA $(( es1 - es0 )), EVAL $(( e1 - e0 )), SET $(( s1 - s0 )))"
        fi
        log "check $peer: HTTP $status, RateLimit-Policy: $policy, RateLimit: $rl; decision $rec$extra"
    done
    # Round trips per request, exactly, on 2,000 requests (not a measured run): MONITOR.
    if [[ " ${ACTIVE_PEERS[*]} " == *" gatehouse-redis "* ]]; then
        # shellcheck disable=SC2086
        REDIS_PROBE=$(redis_monitor_probe "${peer_url[gatehouse-redis]}" 2000 ${peer_args[gatehouse-redis]})
        read -r pn pc pl <<<"$REDIS_PROBE"
        [[ $pn -gt 0 && $pc -gt 0 ]] || die "gatehouse-redis: the MONITOR probe saw $pn requests, $pc client commands ($TMP/redis/monitor.txt)"
        log "check gatehouse-redis (MONITOR, $pn requests): $pc client commands ($(awk -v c="$pc" -v n="$pn" 'BEGIN { printf "%.3f", c / n }') per request), $pl commands run by scripts"
    fi
fi

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
    [[ " ${ACTIVE_PEERS[*]} " == *" haproxy "* ]] && echo "haproxy: $(haproxy -v 2>&1 | head -n 1)"
    echo "gatehouse: ${GATEHOUSE:-none}"   # skipped peers and why: the SKIPPED lines below
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
for d in "$TMP"/gatehouse-*/; do   # the other Gatehouse instances: config, and output if any
    name=$(basename "$d")
    cp "$d/gatehouse.yaml" "$OUT/$name.yaml" 2>/dev/null || true
    [[ -s "$d/stdout.log" ]] && cp "$d/stdout.log" "$OUT/$name.stdout.log"
    [[ -s "$d/stderr.log" ]] && cp "$d/stderr.log" "$OUT/$name.stderr.log"
done
[[ -n "$REDIS_PID" ]] && echo "redis: $(redis-server --version 2>&1)" >>"$OUT/env.txt"
cp "$TMP/haproxy/haproxy.cfg" "$OUT/haproxy.cfg" 2>/dev/null || true
cp "$TMP/haproxy-notoken/haproxy.cfg" "$OUT/haproxy-notoken.cfg" 2>/dev/null || true
cp "$TMP/tokens/token.txt" "$TMP/tokens/jwks.json" "$OUT/" 2>/dev/null || true

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
            # shellcheck disable=SC2046
            wline=$("$GH_LOAD" "${args[@]}" $(tokens_args "$peer") --duration "$WARMUP" 2>>"$OUT/gh-load.stderr") || true
            tokens_used "$peer" "$wline"
        fi
        # gatehouse-redis: Redis's command counters and CPU around the measured run.
        redis_run=0
        if [[ $peer == gatehouse-redis && -n "$REDIS_PID" ]]; then
            redis_run=1; rc0=$(redis_cmdstats) || die "redis-server does not answer INFO"; rt0=$(tree_ticks "$REDIS_PID")
        fi
        p0=$(tree_ticks "${PEER_PID[$peer]}"); u0=$(tree_ticks "$UPSTREAM_PID")
        # shellcheck disable=SC2046
        line=$("$GH_LOAD" "${args[@]}" $(tokens_args "$peer") --duration "$SECONDS_PER_RUN" 2>>"$OUT/gh-load.stderr") \
            || die "gh-load failed for $peer (see $OUT/gh-load.stderr)"
        p1=$(tree_ticks "${PEER_PID[$peer]}"); u1=$(tree_ticks "$UPSTREAM_PID")
        redis_fields=""
        if [[ $redis_run -eq 1 ]]; then
            rt1=$(tree_ticks "$REDIS_PID"); rc1=$(redis_cmdstats) || die "redis-server does not answer INFO"
        fi
        tokens_used "$peer" "$line"
        reqs=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' <<<"$line")
        proxy_cpu=null
        [[ -n "${PEER_PID[$peer]}" ]] && proxy_cpu=$(per_req $(( p1 - p0 )) "$reqs")
        upstream_cpu=$(per_req $(( u1 - u0 )) "$reqs")
        if [[ $redis_run -eq 1 ]]; then
            read -r es0 e0 s0 ti0 g0 t0 all0 <<<"$rc0"; read -r es1 e1 s1 ti1 g1 t1 all1 <<<"$rc1"
            # Client commands (round trips) = every command but those the GCRA script runs
            # (TIME, GET, SET: no route here sends a SET of its own; the MONITOR probe checks).
            client=$(( (t1 - t0) - (ti1 - ti0) - (g1 - g0) - (s1 - s0) ))
            cmds_per_req=$(awk -v c=$(( t1 - t0 )) -v n="$reqs" 'BEGIN { if (n > 0) printf "%.4f", c / n; else print "null" }')
            client_per_req=$(awk -v c="$client" -v n="$reqs" 'BEGIN { if (n > 0) printf "%.4f", c / n; else print "null" }')
            redis_fields=",\"redis_evalsha\":$(( es1 - es0 )),\"redis_eval\":$(( e1 - e0 )),\"redis_set\":$(( s1 - s0 )),\"redis_time\":$(( ti1 - ti0 )),\"redis_get\":$(( g1 - g0 )),\"redis_commands\":$(( t1 - t0 )),\"redis_commands_per_req\":$cmds_per_req,\"redis_client_commands\":$client,\"redis_client_commands_per_req\":$client_per_req,\"redis_cpu_ticks\":$(( rt1 - rt0 )),\"redis_cpu_us_per_req\":$(per_req $(( rt1 - rt0 )) "$reqs"),\"redis_by_command\":\"$(redis_cmdstats_delta "$all0" "$all1")\""
        fi
        record="{\"round\":$round,\"peer\":\"$peer\",\"scenario\":\"$SCENARIO\",${line#\{}"
        record="${record%\}},\"proxy_cpu_ticks\":$(( p1 - p0 )),\"upstream_cpu_ticks\":$(( u1 - u0 )),\"clk_tck\":$CLK_TCK,\"proxy_cpu_us_per_req\":$proxy_cpu,\"upstream_cpu_us_per_req\":$upstream_cpu$redis_fields}"
        echo "$record" >>"$OUT/rounds.jsonl"
        log "[$run_no/$total_runs] round $round $peer: $line proxy_cpu_us/req=$proxy_cpu upstream_cpu_us/req=$upstream_cpu${redis_fields:+ redis_commands/req=$cmds_per_req client_commands/req=$client_per_req}"
    done
done

# Rate-limit scenario: what the store did for every request, from the decision records
# (store ok = the store decided; full = the in-memory store was full; error = Redis did not
# answer in time and on_store_error admitted the request unchecked).
if [[ -n "$RATELIMIT_SCENARIO" ]]; then
    sleep 1.5   # let the decision logs catch up
    for peer in "${ACTIVE_PEERS[@]}"; do
        [[ $peer == *-nolimit ]] && continue
        f=$TMP/$peer/decisions.jsonl
        printf '%s\t%s\t%s\t%s\t%s\n' "$peer" "$(grep -c '"store":"ok"' "$f" || true)" \
            "$(grep -c '"store":"full"' "$f" || true)" "$(grep -c '"store":"error"' "$f" || true)" \
            "$(wc -l <"$f")" >>"$OUT/rate-store.tsv"
        # The records admitted without the store (their times place them in the run log).
        grep -E '"store":"(error|full)"' "$f" | head -n 20 >"$OUT/$peer.store-errors.jsonl" || true
    done
fi

# ---------------------------------------------------------------------------
# Summary: medians over rounds, ratios to nginx.
# ---------------------------------------------------------------------------
SUMMARY_RATELIMIT=$RATELIMIT_SCENARIO SUMMARY_STORE_TSV=$OUT/rate-store.tsv SUMMARY_REDIS_PROBE=$REDIS_PROBE \
SUMMARY_UNIT=$SCENARIO_UNIT SUMMARY_BODY_BYTES=$WEBHOOK_BODY_BYTES SUMMARY_TARGETS=$(printf '%s\n' "${SCENARIO_TARGETS[@]}") \
SUMMARY_RATIOS=$(printf '%s\n' "${SCENARIO_RATIOS[@]}") \
python3 - "$OUT/rounds.jsonl" "$OUT/peers.tsv" "$SCENARIO" "$SCENARIO_DESC" "${SKIPPED_NOTES[@]}" >"$OUT/summary.txt" <<'EOF'
import json, os, statistics, sys
path, peers_tsv, scenario, desc, skipped = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
unit = "handshake" if os.environ.get("SUMMARY_UNIT") == "handshake" else "request"
targets = [t.split() for t in os.environ.get("SUMMARY_TARGETS", "").splitlines() if t.strip()]
targets = [t if len(t) == 5 else t[:3] + ["gatehouse", "nginx"] for t in targets]
pairs = [p.split() for p in os.environ.get("SUMMARY_RATIOS", "gatehouse nginx").splitlines() if p.strip()]
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
u = "hs" if unit == "handshake" else "req"
rate = "handshakes/s" if unit == "handshake" else "req/s"
cols = [("rps", rate, 0), ("p50_us", "p50 µs", 0), ("p90_us", "p90 µs", 0), ("p99_us", "p99 µs", 0),
        ("proxy_cpu_us_per_req", f"proxy CPU µs/{u}", 1),
        ("upstream_cpu_us_per_req", f"upstream µs/{u}", 1),
        ("loadgen_cpu_us_per_req", f"loadgen µs/{u}", 1)]
names = {"rps": rate, "proxy_cpu_us_per_req": f"proxy CPU per {unit}", "p99_us": "p99", "p50_us": "p50"}
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
if unit == "handshake":
    print("one request per connection: handshakes/s = requests/s; latency includes TCP connect and the full handshake")
print(f"µs/{u} columns: CPU time (user+system, from /proc) per {unit} of the proxy, the upstream nginx and gh-load")
body = int(os.environ.get("SUMMARY_BODY_BYTES") or 0)
if body:
    # A webhook route hashes every body once (HMAC-SHA256 with the one secret) and forwards it.
    for p in peers:
        rps = med(p, "rps")
        cpu = med(p, "proxy_cpu_us_per_req")
        what = "verified and forwarded" if p == "gatehouse" else "forwarded"
        line = f"{labels.get(p, p)}: {rps * body / 1e6:,.1f} MB/s of {body:,}-byte bodies {what}" if rps else f"{labels.get(p, p)}: -"
        if cpu:
            line += f"; {body / cpu:,.0f} MB per proxy CPU-second"
        print(line)
    a, b = "gatehouse", next((q for q in peers if q != "gatehouse"), None)
    if a in peers and b and med(a, "proxy_cpu_us_per_req") and med(b, "proxy_cpu_us_per_req"):
        extra = med(a, "proxy_cpu_us_per_req") - med(b, "proxy_cpu_us_per_req")
        print(f"the webhook costs {extra:,.1f} µs of proxy CPU per delivery over the same route without it"
              + (f" ({body / extra:,.0f} MB/s per core if it were all hashing)" if extra > 0 else ""))
print()
def ratio_value(key, a, b):
    x, y = med(a, key), med(b, key)
    return x / y if a in peers and b in peers and x and y else None
def ratio(key, a, b):
    v = ratio_value(key, a, b)
    return "-" if v is None else f"{v:.2f}x"
def round_ratios(key, a, b):
    # Peers of one round run back to back, so the ratio within a round is less exposed to the
    # machine's load drifting over the run than the ratio of the two medians.
    by_round = {}
    for r in runs:
        if r.get(key): by_round.setdefault(r["round"], {})[r["peer"]] = r[key]
    return [v[a] / v[b] for v in by_round.values() if a in v and b in v]
for a, b in pairs:
    la, lb = labels.get(a, a), labels.get(b, b)
    if a in peers and b in peers:
        print(f"{la} / {lb}:  "
              f"CPU per {unit} {ratio('proxy_cpu_us_per_req', a, b)}   "
              f"p99 {ratio('p99_us', a, b)}   p50 {ratio('p50_us', a, b)}   {rate} {ratio('rps', a, b)}")
        per_round = round_ratios("proxy_cpu_us_per_req", a, b)
        if len(per_round) > 1:
            print(f"  CPU per {unit}, round by round: median {statistics.median(per_round):.2f}x, "
                  f"range {min(per_round):.2f}x-{max(per_round):.2f}x over {len(per_round)} rounds")
        print(f"  (CPU and latency: lower is better, < 1.00x beats {lb}; {rate}: higher is better)")
    else:
        print(f"{la} / {lb} ratios: n/a ({a if a not in peers else b} not in this run)")
for key, op, factor, a, b in targets:
    what = f"target: {labels.get(a, a)} / {labels.get(b, b)} {names.get(key, key)} {op} {float(factor):.2f}x"
    v = ratio_value(key, a, b)
    if v is None:
        print(f"{what}: NOT MEASURED ({a} or {b} not in this run)")
    else:
        met = v <= float(factor) if op == "<=" else v >= float(factor)
        print(f"{what}: {v:.2f}x, {'MET' if met else 'NOT MET'}")
if os.environ.get("SUMMARY_RATELIMIT"):
    # Issue 6: Redis round trips per request, target one. From INFO commandstats around each
    # measured gatehouse-redis run (INFO itself excluded), over the requests gh-load completed
    # in it. Redis counts the commands its Lua scripts run like a client's, so "executed" is
    # EVALSHA + the script's TIME, GET, SET; "client commands" (round trips) leaves those out,
    # and the MONITOR probe before the rounds counts client commands exactly.
    rl = labels.get("gatehouse-redis", "gatehouse-redis")
    rr = [r for r in runs if r["peer"] == "gatehouse-redis" and r.get("redis_commands") is not None]
    per = [r["redis_client_commands_per_req"] for r in rr if r.get("redis_client_commands_per_req") is not None]
    what = f"target: {rl} Redis round trips (client commands) per request 1.00 (MET if <= 1.05)"
    if per:
        m = statistics.median(per)
        ex = statistics.median(r["redis_commands_per_req"] for r in rr if r.get("redis_commands_per_req") is not None)
        c = sum(r["redis_commands"] for r in rr); n = sum(r["requests"] for r in rr)
        cc = sum(r["redis_client_commands"] for r in rr)
        k = {x: sum(r[f"redis_{x}"] for r in rr) for x in ("evalsha", "eval", "set", "time", "get")}
        print(f"{rl}: Redis client commands (round trips) per request {m:.3f} (median; per round "
              + ", ".join(f"{x:.3f}" for x in per) + f"); commands executed per request {ex:.3f}")
        others = [f"round {r['round']}: {r.get('redis_by_command')}" for r in rr
                  if r["redis_commands"] - sum(r[f"redis_{x}"] for x in ("evalsha", "eval", "set", "time", "get"))]
        print(f"  all measured runs, {n:,} requests: {c:,} commands executed = EVALSHA {k['evalsha']:,} + EVAL {k['eval']:,}"
              f" + TIME {k['time']:,} + GET {k['get']:,} + SET {k['set']:,} + other {c - sum(k.values()):,}"
              + (f" ({'; '.join(others)})" if others else "") + f"; client commands {cc:,} ({cc / n:.3f} per request)")
        probe = os.environ.get("SUMMARY_REDIS_PROBE", "").split()
        if len(probe) == 3 and int(probe[0]):
            pn, pc, pl = map(int, probe)
            print(f"  MONITOR probe ({pn:,} requests, before the rounds): {pc:,} client commands ({pc / pn:.3f} per request),"
                  f" {pl:,} run by scripts ({pl / pn:.3f} per request)")
            if abs(pc / pn - m) > 0.05:
                print(f"*** the MONITOR probe's {pc / pn:.3f} client commands per request differs from the rounds' {m:.3f}")
        rc, pc_ = med("gatehouse-redis", "redis_cpu_us_per_req"), med("gatehouse-redis", "proxy_cpu_us_per_req")
        if rc is not None:
            print(f"  redis-server CPU {rc:,.1f} µs/req (not in proxy CPU; gatehouse + redis-server {pc_ + rc:,.1f} µs/req)"
                  if pc_ is not None else f"  redis-server CPU {rc:,.1f} µs/req")
        print(f"{what}: {m:.2f}, {'MET' if m <= 1.05 else 'NOT MET'}")
    else:
        print(f"{what}: NOT MEASURED (gatehouse-redis not in this run)")
    tsv = os.environ.get("SUMMARY_STORE_TSV", "")
    if tsv and os.path.exists(tsv):
        for l in open(tsv):
            p, ok, full, err, total = l.rstrip("\n").split("\t")
            print(f"{labels.get(p, p)} decision records: rate_limit store ok {int(ok):,}, full {int(full):,}, "
                  f"error {int(err):,} (of {int(total):,} records)")
            if int(err) or int(full):
                ts = [json.loads(x).get("ts", "?")[11:23] for x in open(os.path.join(os.path.dirname(tsv), f"{p}.store-errors.jsonl")) if x.strip()]
                print(f"*** {p}: {int(err) + int(full):,} requests admitted without the store deciding (store error/full), at "
                      + ", ".join(ts) + (" …" if int(err) + int(full) > len(ts) else "") + " UTC (see the run log for the runs' times)")
for s in skipped:
    print(f"*** {s}")
EOF
echo
cat "$OUT/summary.txt"
echo
echo "raw per-run JSON: $OUT/rounds.jsonl; summary: $OUT/summary.txt; environment: $OUT/env.txt"
