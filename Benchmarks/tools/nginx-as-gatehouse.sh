#!/usr/bin/env bash
# A/A check for the harness: stands in for `gatehouse serve --config FILE`,
# reading the YAML that run.sh generates and serving it with nginx configured
# exactly like the nginx peer (plus an admin /readyz). Run
#   Benchmarks/run.sh --gatehouse Benchmarks/tools/nginx-as-gatehouse.sh
# and the "gatehouse / nginx" ratios show the noise floor of this machine:
# both peers are the same server, so any distance from 1.00x is noise.
set -e
[[ $1 == serve && $2 == --config ]] || exit 64
cfg=$3; d=$(dirname "$cfg")
port=$(awk '/^listeners:/{l=1} l && /address:/{split($2,a,":"); print a[2]; exit}' "$cfg")
admin=$(awk '/^admin:/{l=1} l && /address:/{split($2,a,":"); print a[2]; exit}' "$cfg")
cert=$(awk '/certificate:/{print $2; exit}' "$cfg")
key=$(awk '/private_key:/{sub("file:","",$2); print $2; exit}' "$cfg")
up=$(grep -o '"127.0.0.1:[0-9]*"' "$cfg" | tr -d '"')
cat > "$d/nginx.conf" <<EOC
worker_processes $(nproc);
daemon off;
pid $d/nginx.pid;
error_log $d/nginx.error.log warn;
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
        server $up;
        keepalive 64;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$port ssl backlog=4096;
        ssl_certificate $cert;
        ssl_certificate_key $key;
        ssl_protocols TLSv1.2 TLSv1.3;
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
