"""Sends Engage-shaped audience events to iterable-lists with Segment's official Python client.

    python3 -m pip install segment-analytics-python   # or run ./scripts/test once
    python3 examples/segment_python_client.py http://127.0.0.1:8088 tour-write-key

The only change from sending to Segment is `host`: the service speaks Segment's tracking API.
"""

import os
import sys

# ./scripts/test installs the client in .test-deps/python; use it when it is there.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".test-deps", "python"))
import segment.analytics as analytics  # noqa: E402

host, write_key = sys.argv[1], sys.argv[2]
errors = []
client = analytics.Client(write_key, host=host, on_error=lambda e, batch: errors.append(str(e)))


def audience(key):
    # What Engage puts in every audience event (decision *Audience events* in the design).
    return {"personas": {"computation_class": "audience", "computation_key": key}}


client.identify("py-1", {"email": "kim@example.com", "python_fans": True}, context=audience("python_fans"))
client.identify("py-2", {"email": "lee@example.com", "python_fans": True}, context=audience("python_fans"))
client.identify("py-2", {"email": "lee@example.com", "python_fans": False}, context=audience("python_fans"))
client.track("py-3", "Audience Entered", {"python_fans": True}, context={**audience("python_fans"), "traits": {"email": "max@example.com"}})
client.flush()
client.shutdown()
if errors:
    sys.exit("the client reported: " + "; ".join(errors))
print("sent 4 events; python_fans should now hold py-1 and py-3")
