#!/usr/bin/env python3
"""A Drover remote worker in Python, standard library only (protocol: docs/remote-workers.md).

    DROVER_URL=http://127.0.0.1:7070 DROVER_KEY=drv_... python3 examples/python-worker.py

It runs the handlers "py-echo" and "py-steps", declared in the node's config as
{ name: 'py-echo', remote: true } (likewise py-steps), with a key that has the `work` scope
(a default work key leases remote: true handlers only). "py-steps" uses durable steps
(docs/remote-workers.md, "Durable steps"): a step that ran is never run again, and a sleep
suspends the job on the node. SIGTERM or Ctrl-C: finish the job in hand, then exit 0.
"""
import json, os, signal, time, traceback, urllib.error, urllib.request
from datetime import datetime

URL, KEY = os.environ.get("DROVER_URL", "http://127.0.0.1:7070").rstrip("/"), os.environ["DROVER_KEY"]
LEASE_MS = 60000

def echo(payload, step):
    if not isinstance(payload, dict):
        raise ValueError("expected an object payload")  # a failed attempt; the node decides on a retry
    return {"echo": payload, "by": "python"}

def add_then_double(payload, step):
    total = step.run("add", lambda: payload["a"] + payload["b"])  # stored; a re-run gets it back without running
    step.sleep("pause", payload.get("pauseMs", 100))  # the job leaves this worker and comes back after the pause
    return step.run("double", lambda: {"doubled": total * 2, "by": "python"})

HANDLERS = {"py-echo": echo, "py-steps": add_then_double}
state = {"stopping": False, "busy": False}

def call(path, body, timeout=30):
    request = urllib.request.Request(URL + path, json.dumps(body).encode(),
                                     {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)

class Suspended(Exception):
    """A step suspended the job: the attempt is over, report nothing."""

class LeaseLost(Exception):
    """409 stale-lease, 403, 404: the job is not ours to work on any more."""

class NonRetryable(Exception):
    """Reported with nonRetryable: a retry cannot fix it."""

def step_call(path, body):
    try:
        return call(path, body)
    except urllib.error.HTTPError as error:
        if error.code in (403, 404, 409):
            raise LeaseLost() from error
        if error.code == 422:  # past the node's durable limits: a retry would fail the same way
            raise NonRetryable(error.read().decode()) from error
        raise

class Steps:
    """ctx.step for one attempt: memoized by name and sequence number, steps read on first use."""
    def __init__(self, fence, clock_offset_ms):
        self.fence, self.offset, self.stored, self.seq, self.asked = fence, clock_offset_ms, None, 0, set()

    def now(self):  # the node's clock, never ahead of it (the node took the lease before we got it)
        return int(time.time() * 1000 + self.offset)

    def _next(self, name, kind):
        if self.stored is None:  # first step call: read what earlier attempts stored
            self.stored = {s["seq"]: s for s in step_call("/v1/workers/steps", self.fence)["steps"]}
        if name in self.asked:
            raise RuntimeError(f"step {name!r} asked twice in one run: names are unique within a job")
        self.asked.add(name)
        seq, self.seq = self.seq, self.seq + 1
        stored = self.stored.get(seq)
        elsewhere = [s for s in self.stored.values() if s["name"] == name and s["seq"] != seq]
        if (stored and (stored["name"], stored["kind"]) != (name, kind)) or elsewhere:
            raise NonRetryable(f"the job's steps changed between runs: step {seq + 1} is stored as "
                               f"{(stored or elsewhere[0])['name']!r}, the handler now asks for {name!r}")
        return seq, stored

    def run(self, name, fn):
        seq, stored = self._next(name, "run")
        if stored:
            return stored["result"]
        started, result = self.now(), fn()
        step_call("/v1/workers/step", {**self.fence, "name": name, "seq": seq, "kind": "run", "startedAt": started, "result": result})
        return result

    def sleep(self, name, ms):
        seq, stored = self._next(name, "sleep")
        if stored:
            return None
        answer = step_call("/v1/workers/suspend", {**self.fence, "step": name, "seq": seq, "kind": "sleep", "startedAt": self.now(), "timeoutMs": ms})
        if answer["suspended"]:
            raise Suspended()
        return None

def stop(*_):
    state["stopping"] = True
    if not state["busy"]:
        raise SystemExit(0)  # interrupts a waiting lease; nothing is held yet

signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
while not state["stopping"]:
    try:  # long-poll: the node answers as soon as a job is ready, or with no jobs after waitMs
        jobs = call("/v1/workers/lease", {"handlers": list(HANDLERS), "max": 1, "leaseMs": LEASE_MS, "waitMs": 20000}, timeout=50)["jobs"]
    except (urllib.error.URLError, OSError) as error:  # node down or draining (503): back off
        retry_after = getattr(error, "headers", None) and error.headers.get("Retry-After")
        time.sleep(int(retry_after) if retry_after and retry_after.isdigit() else 1)
        continue
    received = time.time() * 1000
    state["busy"] = True
    for job in jobs:
        fence = {"jobId": job["id"], "token": job["leaseToken"]}
        expires = datetime.fromisoformat(job["leaseExpiresAt"].replace("Z", "+00:00")).timestamp() * 1000
        try:
            result = HANDLERS[job["handler"]](job["payload"], Steps(fence, expires - LEASE_MS - received))
        except Suspended:
            continue  # the node holds the job until its wait ends; nothing to report
        except LeaseLost:
            continue  # a step call found the lease gone (or not ours): drop the job
        except Exception as error:
            call("/v1/workers/fail", {**fence, "error": traceback.format_exc(), "nonRetryable": isinstance(error, NonRetryable)})
            continue
        try:
            call("/v1/workers/complete", {**fence, "result": result})
        except urllib.error.HTTPError as error:
            if error.code not in (403, 409):  # 409 stale-lease, 403 outside this key's scope: drop the result
                raise
    state["busy"] = False
