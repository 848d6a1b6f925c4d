#!/usr/bin/env bash
# Checks that gh-load --new-connection makes a full handshake every time (no TLS session
# resumption), which the *-handshake scenarios rely on. nginx (mTLS, as in run.sh) logs
# $ssl_session_reused for every request: "r" for a resumed session, "." for a full handshake.
#
#   Benchmarks/tools/check-resumption.sh [--requests 200]
#
# As a control, openssl s_client first resumes a session against the same nginx, to show
# that the log does catch resumption. Loopback only, bounded.
set -euo pipefail
# shellcheck source=lib/common.sh disable=SC2034
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib/common.sh"

REQUESTS=200
while [[ $# -gt 0 ]]; do
    case "$1" in
        --requests) REQUESTS=$2; shift 2 ;;
        --keep) KEEP_TMP=1; shift ;;
        *) echo "usage: $0 [--requests N] [--keep]" >&2; exit 2 ;;
    esac
done
[[ "$REQUESTS" =~ ^[1-9][0-9]*$ ]] || { echo "--requests: a positive integer" >&2; exit 2; }

bench_init
read -r UPSTREAM_PORT NGINX_PORT <<<"$(free_ports 2)"
use_mtls
LOG=$TMP/nginx-proxy/reuse.log
NGINX_HTTP_EXTRA="log_format reuse '\$ssl_session_reused \$ssl_protocol \$ssl_client_verify \$status';"
NGINX_PROXY_EXTRA+=" access_log $LOG reuse;"
start_upstream
start_nginx || die "nginx did not start"

count() { # pattern -> lines of the log matching it
    grep -c -- "$1" "$LOG" 2>/dev/null || true
}

# Control: openssl s_client saves its session, then resumes it on a second connection;
# nginx must log that second request as "r" (so the log does see resumption).
s_client() { # extra args...
    printf 'GET /1k.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' |
        timeout 10 openssl s_client -connect "127.0.0.1:$NGINX_PORT" -CAfile "$TMP/pki/ca.pem" \
            -cert "$TMP/pki/client.pem" -key "$TMP/pki/client.key" -ign_eof -quiet "$@" >>"$TMP/s_client.log" 2>&1 || true
}
s_client -sess_out "$TMP/session.pem"
s_client -sess_in "$TMP/session.pem"
sleep 0.5
control=$(tr '\n' ';' <"$LOG")
control_reused=$(count '^r ')
(( control_reused == 1 )) || die "control failed: s_client's second connection was not logged as resumed (log: $control)"

: >"$LOG"
"$GH_LOAD" --url "https://127.0.0.1:$NGINX_PORT/1k.bin" --ca "$TMP/pki/ca.pem" \
    --cert "$TMP/pki/client.pem" --key "$TMP/pki/client.key" \
    --new-connection --connections 4 --max-requests "$REQUESTS" --duration 20 >"$TMP/gh-load.out"
sleep 0.5   # let the workers write their log lines
total=$(wc -l <"$LOG"); reused=$(count '^r '); full=$(count '^\. ')
verified=$(count ' SUCCESS ')
echo "control: openssl s_client, new session then resumed: nginx logged $control"
echo "gh-load --new-connection: $(cat "$TMP/gh-load.out")"
echo "nginx saw $total request(s): $full full handshake(s), $reused resumed; client certificate verified on $verified; protocols: $(awk '{print $2}' "$LOG" | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
if (( total > 0 && reused == 0 && full == total && verified == total )); then
    echo "OK: every gh-load connection was a full mTLS handshake"
else
    echo "FAIL: gh-load resumed sessions or was not verified"; exit 1
fi
