"""Sends Engage-shaped audience events through the official Segment Python client
(segment-analytics-python), pointed at an iterable-lists service by its host.

Usage: send_python.py HOST WRITE_KEY AUDIENCE COUNT [--gzip]
Users py-0 … py-{COUNT-1} enter AUDIENCE; then every third user leaves it.
Prints one JSON line: {"sent": N, "errors": [...]}; exits 1 when the client reported errors.
"""
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
deps = os.path.join(here, "..", "..", ".test-deps", "python")
sys.path.insert(0, deps)
try:
    import segment.analytics as analytics
except ImportError:
    print("segment-analytics-python is not installed in .test-deps/python: run scripts/test "
          "(or tests/clients/install.sh) first", file=sys.stderr)
    sys.exit(3)

host, write_key, audience, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
gzip = "--gzip" in sys.argv[5:]

errors = []
client = analytics.Client(write_key, host=host, gzip=gzip, max_retries=5,
                          on_error=lambda e, batch: errors.append(str(e)),
                          upload_size=100, sync_mode=False)
context = {"personas": {"computation_class": "audience", "computation_key": audience}}
sent = 0
for i in range(count):
    client.identify(f"py-{i}", {"email": f"py-{i}@example.com", audience: True}, context=context)
    sent += 1
for i in range(0, count, 3):
    client.track(f"py-{i}", "Audience Exited", {"email": f"py-{i}@example.com", audience: False},
                 context=context)
    sent += 1
client.flush()
client.join()
print(json.dumps({"sent": sent, "errors": errors}))
sys.exit(1 if errors else 0)
