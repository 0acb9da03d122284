#!/usr/bin/env python3
"""A Drover remote worker in Python, standard library only (protocol: docs/remote-workers.md).

    DROVER_URL=http://127.0.0.1:7070 DROVER_KEY=drv_... python3 examples/python-worker.py

It runs the handler "py-echo", declared in the node's config as { name: 'py-echo', remote: true },
with a key that has the `work` scope (a default work key leases remote: true handlers only). SIGTERM or Ctrl-C: finish the job in hand, then exit 0.
"""
import json, os, signal, time, traceback, urllib.error, urllib.request

URL, KEY = os.environ.get("DROVER_URL", "http://127.0.0.1:7070").rstrip("/"), os.environ["DROVER_KEY"]

def echo(payload):
    if not isinstance(payload, dict):
        raise ValueError("expected an object payload")  # a failed attempt; the node decides on a retry
    return {"echo": payload, "by": "python"}

HANDLERS = {"py-echo": echo}
state = {"stopping": False, "busy": False}

def call(path, body, timeout=30):
    request = urllib.request.Request(URL + path, json.dumps(body).encode(),
                                     {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)

def stop(*_):
    state["stopping"] = True
    if not state["busy"]:
        raise SystemExit(0)  # interrupts a waiting lease; nothing is held yet

signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
while not state["stopping"]:
    try:  # long-poll: the node answers as soon as a job is ready, or with no jobs after waitMs
        jobs = call("/v1/workers/lease", {"handlers": list(HANDLERS), "max": 1, "leaseMs": 60000, "waitMs": 20000}, timeout=50)["jobs"]
    except (urllib.error.URLError, OSError) as error:  # node down or draining (503): back off
        retry_after = getattr(error, "headers", None) and error.headers.get("Retry-After")
        time.sleep(int(retry_after) if retry_after and retry_after.isdigit() else 1)
        continue
    state["busy"] = True
    for job in jobs:
        fence = {"jobId": job["id"], "token": job["leaseToken"]}
        try:
            result = HANDLERS[job["handler"]](job["payload"])
        except Exception:
            call("/v1/workers/fail", {**fence, "error": traceback.format_exc()})
            continue
        try:
            call("/v1/workers/complete", {**fence, "result": result})
        except urllib.error.HTTPError as error:
            if error.code not in (403, 409):  # 409 stale-lease, 403 outside this key's scope: drop the result
                raise
    state["busy"] = False
