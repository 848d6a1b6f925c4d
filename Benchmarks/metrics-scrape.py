#!/usr/bin/env python3
"""How long a `/metrics` scrape takes on a gateway with 100 routes (issue 7).

Starts `gatehouse serve` (a release build) on loopback with 100 routes in front of a small
upstream of its own, sends traffic to every route so that each has allow and deny series
(half the routes have a rate limit of burst 1, so their second request is `rate.limited`),
then, in the same run, times SCRAPES keep-alive GETs of /metrics and as many of /healthz on
the admin listener. The ratio scrape/healthz cancels most of the machine's noise; the
absolute figures are for reading. Every loop is bounded in count and time.

    Benchmarks/metrics-scrape.py [--gatehouse .build/release/gatehouse] [--scrapes 200]
"""
import argparse, http.client, http.server, json, os, socket, statistics, subprocess, sys, tempfile, threading, time

ROUTES = 100


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"ok"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def config(port, admin, upstream, log):
    lines = [
        "environment: bench",
        "listeners:",
        f"  - {{ name: public, address: '127.0.0.1:{port}', insecure_plaintext: true }}",
        f"admin: {{ address: '127.0.0.1:{admin}' }}",
        f"upstreams:\n  origin: {{ endpoints: ['127.0.0.1:{upstream}'] }}",
        "routes:",
    ]
    for index in range(ROUTES):
        lines.append(f"  - {{ name: route-{index:03d}, match: {{ path_prefix: /r{index:03d} }}, upstream: origin")
        if index % 2:
            lines[-1] += ", rate_limit: { key: ip, rate: 1/m, burst: 1 }"
        lines[-1] += " }"
    lines.append(f"decision_log: {{ path: {log} }}")
    return "\n".join(lines) + "\n"


def timed_gets(port, path, count, deadline):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times, size = [], 0
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        start = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        times.append(time.perf_counter() - start)
        assert response.status == 200, (path, response.status)
        size = len(body)
    connection.close()
    return times, size


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gatehouse", default=".build/release/gatehouse")
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="gatehouse-scrape-")
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port, admin = free_port(), free_port()
    path = os.path.join(work, "gatehouse.yaml")
    with open(path, "w") as f:
        f.write(config(port, admin, upstream.server_address[1], os.path.join(work, "decisions.jsonl")))
    gateway = subprocess.Popen([args.gatehouse, "serve", "--config", path],
                               stdout=open(os.path.join(work, "stdout.log"), "w"), stderr=subprocess.STDOUT)
    try:
        for _ in range(150):  # 15 s
            try:
                if timed_gets(admin, "/readyz", 1, time.monotonic() + 1)[0]:
                    break
            except (OSError, AssertionError, http.client.HTTPException):
                time.sleep(0.1)
        else:
            sys.exit("gatehouse did not become ready (see %s)" % work)

        # Traffic: every route twice (odd routes: allow, then rate.limited), plus one miss.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        statuses = {}
        for index in range(ROUTES):
            for _ in range(2):
                connection.request("GET", f"/r{index:03d}/x")
                response = connection.getresponse()
                response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
        connection.close()

        deadline = time.monotonic() + 120
        # Interleaved in blocks so both see the same machine.
        scrape, health, size = [], [], 0
        for _ in range(10):
            t, size = timed_gets(admin, "/metrics", args.scrapes // 10, deadline)
            scrape += t
            health += timed_gets(admin, "/healthz", args.scrapes // 10, deadline)[0]
        series = sum(1 for line in http_text(admin).splitlines() if line and not line.startswith("#"))
        decision_series = sum(1 for line in http_text(admin).splitlines() if line.startswith("gatehouse_decisions_total{"))
        result = {
            "routes": ROUTES, "traffic_statuses": statuses, "scrapes": len(scrape),
            "metrics_bytes": size, "series": series, "decision_series": decision_series,
            "scrape_ms_median": round(statistics.median(scrape) * 1000, 3),
            "scrape_ms_p95": round(sorted(scrape)[int(len(scrape) * 0.95) - 1] * 1000, 3),
            "healthz_ms_median": round(statistics.median(health) * 1000, 3),
            "scrape_over_healthz": round(statistics.median(scrape) / statistics.median(health), 1),
        }
        print(json.dumps(result))
    finally:
        gateway.terminate()
        try:
            gateway.wait(timeout=20)
        except subprocess.TimeoutExpired:
            gateway.kill()
        upstream.shutdown()


def http_text(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    return text


if __name__ == "__main__":
    main()
