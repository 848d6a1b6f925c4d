#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo need: curl and openssl are the real
# clients the end-to-end tests drive the gateway with; with --test also redis-server (the Redis
# state-store tests start their own on a free loopback port; no system service is started) and
# python3-jsonschema (the audit tests validate SARIF output against the vendored 2.1.0 schema).
# Idempotent; installs only what is missing.
set -euo pipefail

packages=()
command -v curl >/dev/null 2>&1 || packages+=(curl)
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
command -v make >/dev/null 2>&1 || packages+=(make)
if [ "${1:-}" = "--test" ]; then
    [ -x /usr/bin/redis-server ] || packages+=(redis-server)
    # Debian's python3 (not one first on PATH, e.g. pyenv's): the package installs for it.
    /usr/bin/python3 -c 'import jsonschema' >/dev/null 2>&1 || packages+=(python3-jsonschema)
fi
if [ "${1:-}" = "--bench" ]; then
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || packages+=(nginx)
fi

if [ ${#packages[@]} -eq 0 ]; then
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        echo "install-deps: need root (or sudo) to install: ${packages[*]}" >&2
        exit 1
    fi
fi
echo "install-deps: installing ${packages[*]}" >&2
$sudo apt-get update -qq
# A policy-rc.d that refuses keeps the package from starting its service (redis-server's
# would take port 6379); an existing policy is left alone.
policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    trap '$sudo rm -f "$policy"' EXIT
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}"
