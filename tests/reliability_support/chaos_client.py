"""The chaos run's client through the official Segment Python library
(segment-analytics-python, installed under .test-deps/python by scripts/test).

Usage: chaos_client.py HOST WRITE_KEY EVENTS_NDJSON
Reads one Segment call per line (identify or track, with messageId and timestamp), sends
them through the library (batches of 100, its own retries), and prints one JSON line:
{"sent": N, "failed": [messageId, ...]} -- the messageIds of batches the library gave up on
(reported through on_error), so the model can leave them out.
"""
import datetime
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", ".test-deps", "python"))
import segment.analytics as analytics  # noqa: E402

host, write_key, path = sys.argv[1], sys.argv[2], sys.argv[3]
failed = []


def on_error(error, batch):
    failed.extend(m.get("messageId") for m in batch)


client = analytics.Client(write_key, host=host, on_error=on_error, upload_size=100,
                          max_queue_size=1_000_000, max_retries=1000, timeout=20,
                          max_total_backoff_duration=600)
sent = 0
with open(path) as f:
    for line in f:
        e = json.loads(line)
        ts = datetime.datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))
        if e["type"] == "identify":
            client.identify(e["userId"], e.get("traits"), context=e.get("context"),
                            timestamp=ts, message_id=e["messageId"])
        else:
            client.track(e["userId"], e["event"], e.get("properties"), context=e.get("context"),
                         timestamp=ts, message_id=e["messageId"])
        sent += 1
client.flush()
client.join()
print(json.dumps({"sent": sent, "failed": failed}))
