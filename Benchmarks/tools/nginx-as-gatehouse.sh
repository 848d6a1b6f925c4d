#!/usr/bin/env bash
# A/A check for the harness: stands in for `gatehouse serve --config FILE`,
# reading the YAML that run.sh generates and serving it with nginx configured
# exactly like the nginx peer (plus an admin /readyz). Run
#   Benchmarks/run.sh --gatehouse Benchmarks/tools/nginx-as-gatehouse.sh
# and the "gatehouse / nginx" ratios show the noise floor of this machine:
# both peers are the same server, so any distance from 1.00x is noise. In the mTLS
# scenarios it verifies client certificates like the nginx peer (ssl_verify_client on),
# which also exercises the harness's whole Gatehouse path before Gatehouse has mTLS.
set -e
[[ $1 == serve && $2 == --config ]] || exit 64
cfg=$3; d=$(dirname "$cfg")
port=$(awk '/^listeners:/{l=1} l && /address:/{split($2,a,":"); print a[2]; exit}' "$cfg")
admin=$(awk '/^admin:/{l=1} l && /address:/{split($2,a,":"); print a[2]; exit}' "$cfg")
cert=$(awk '/certificate:/{print $2; exit}' "$cfg")
key=$(awk '/private_key:/{sub("file:","",$2); print $2; exit}' "$cfg")
up=$(grep -o '"127.0.0.1:[0-9]*"' "$cfg" | tr -d '"')
# idle-memory.sh sets max_connections and an idle timeout; mirror them (as the nginx peer
# gets worker_connections N + 2048 and keepalive_timeout = the idle timeout there).
maxconn=$(awk '/max_connections:/{print $2; exit}' "$cfg")
idle=$(awk '/^ *idle:/{print $2; exit}' "$cfg")
worker_connections=4096; nofile=""
if [[ -n $maxconn ]]; then
    worker_connections=$(( maxconn + 1024 ))
    nofile="worker_rlimit_nofile $(( 2 * maxconn + 4096 ));"
fi
# mTLS scenarios: verify client certificates against the trust bundle, as the nginx peer does.
mtls=""
if grep -q 'client_certificates: required' "$cfg"; then
    bundle=$(awk '/^trust_domains:/{l=1} l && /bundle:/{print $2; exit}' "$cfg")
    mtls="ssl_client_certificate $bundle; ssl_verify_client on;"
fi
cat > "$d/nginx.conf" <<EOC
worker_processes $(nproc);
daemon off;
pid $d/nginx.pid;
error_log $d/nginx.error.log warn;
$nofile
events { worker_connections $worker_connections; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout ${idle:-120s};
    client_body_temp_path $d/client_body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    upstream origin {
        server $up;
        keepalive 64;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$port ssl backlog=4096;
        ssl_certificate $cert;
        ssl_certificate_key $key;
        ssl_protocols TLSv1.2 TLSv1.3;
        $mtls
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
    server {
        listen 127.0.0.1:$admin;
        location = /readyz { return 200 "ready\n"; }
    }
}
EOC
exec "$(command -v nginx || echo /usr/sbin/nginx)" -e "$d/nginx.error.log" -p "$d" -c "$d/nginx.conf"
