#!/usr/bin/env python3
"""Writes a synthetic decision log (JSON lines, the fields and order of DecisionRecord.jsonBytes())
for `gatehouse report --config conf/legacy-fronting.yaml`, and the counts the report must find.

usage: gen-decision-log.py RECORDS OUT.jsonl [EXPECTED.json]

Deterministic (fixed seed). Timestamps spread over the 120 days before now, so `--since 90d`
leaves about three quarters. 100,000 distinct denied workloads stress the bounded caller map.
"""
import json, random, sys, time

def main():
    records, out = int(sys.argv[1]), sys.argv[2]
    expected_path = sys.argv[3] if len(sys.argv) > 3 else None
    rng = random.Random(8)
    now_ms = int(time.time() * 1000)
    span_ms = 120 * 86_400_000
    cutoff_ms = now_ms - 90 * 86_400_000 + 3_600_000  # an hour of slack for when the report runs
    expected = {"records": records, "in_window_lower_bound": 0, "allowed": {}, "denied_foreign_staging": 0}
    with open(out, "w") as f:
        for i in range(records):
            ts = now_ms - rng.randrange(span_ms)
            r = rng.random()
            peer = token = None
            ip = "10.1.%d.%d" % (rng.randrange(256), rng.randrange(256))
            if r < 0.70:
                route, decision, reason, status = "status", "allow", "allowed", 200
                peer = "spiffe://prod.example/ns/checkout/sa/checkout-%d" % rng.randrange(200)
            elif r < 0.85:
                route, decision, reason, status = "billing-charge", "allow", "allowed", 200
                peer = "spiffe://prod.example/ns/checkout/sa/checkout"
            elif r < 0.95:
                route, decision, reason, status = "billing-charge", "deny", "peer.not_allowed", 403
                peer = "spiffe://prod.example/ns/team-%d/sa/worker-%d" % (rng.randrange(1000), rng.randrange(100))
            elif r < 0.98:
                route, decision, reason, status = "status", "deny", "peer.not_allowed", 403
                peer = "spiffe://staging.example/ns/checkout/sa/checkout"
            else:
                route, decision, reason, status = None, "deny", "route.not_found", 404
                ip = "203.0.113.%d" % rng.randrange(256)
            if ts >= cutoff_ms:
                expected["in_window_lower_bound"] += 1
            if decision == "allow":
                expected["allowed"][route] = expected["allowed"].get(route, 0) + 1
            if peer and peer.startswith("spiffe://staging."):
                expected["denied_foreign_staging"] += 1
            t = time.gmtime(ts // 1000)
            record = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".%03dZ" % (ts % 1000), "request_id": "%032x" % rng.getrandbits(128),
                "listener": "public", "route": route, "method": "GET" if route == "status" else "POST",
                "path": "/status" if route == "status" else "/charge", "client_ip": ip}
            if route is None:
                del record["route"]
            if peer:
                record["peer"] = {"spiffe_id": peer, "cert_sha256": "%064x" % rng.getrandbits(256)}
            record.update({"decision": decision, "reason": reason, "status": status})
            if decision == "allow":
                record["upstream"] = {"name": "status" if route == "status" else "billing", "endpoint": "127.0.0.1:9001", "status": 200}
            record.update({"duration_ms": round(rng.random() * 5, 3), "policy": {"version": "bench", "cohort": "stable"}})
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
    if expected_path:
        with open(expected_path, "w") as f:
            json.dump(expected, f, indent=2, sort_keys=True)

main()
