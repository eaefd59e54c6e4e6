"""Replayed calls run in a worker process, never in the replay's own (the README's "Level 10: dumps and replay").

A replayed call can kill the process that makes it: a call that crashed when recorded crashes again, and some
error paths crash the loader itself (a call that failed with return code -2 and no error object makes the real
`tvm_ffi` loader dereference a null error: SIGSEGV). So the replay sends each call to a worker
(`python -m flashlog replay --worker`) over a pipe, one JSON line each way, and reads the answer with a deadline
(`--timeout`). A worker that dies or does not answer in time is that call's result, and the next call gets a fresh
worker. The worker's own stdout (what the module prints) goes to stderr, so the replay's stdout holds only its lines.
"""

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path


class Worker:
    """One worker process, started on the first call and again after one died."""

    def __init__(self, timeout):
        self.timeout = timeout
        self.proc = None

    def _start(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent) + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen([sys.executable, "-m", "flashlog", "replay", "--worker", "-"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.buffer = b""

    def _read_line(self):
        """(one line of the worker's answer or None, whether the deadline passed before it)."""
        deadline = time.monotonic() + self.timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None, True
            chunk = os.read(fd, 65536)
            if not chunk:
                return None, False
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line, False

    def call(self, request):
        """The worker's answer (a dict); {"died": "signal" | "exit" | "hang", "text": ...} when it gave none."""
        if self.proc is None:
            self._start()
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            pass  # it died before reading: its status says why
        line, late = self._read_line()
        if line is not None:
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                self.close()
                return {"died": "exit", "text": "the replay process answered something else than JSON"}
        if late:
            self.close()
            return {"died": "hang", "text": f"still running after {self.timeout:g} s (hang)"}
        status = self.proc.wait()
        self.proc = None
        if status < 0:
            try:
                return {"died": "signal", "text": signal.Signals(-status).name}
            except ValueError:
                return {"died": "signal", "text": f"signal {-status}"}
        return {"died": "exit", "text": f"the replay process exited with status {status}"}

    def close(self):
        """Ends the worker (killed when it is still running a call)."""
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc = None


def serve(handle):
    """The worker's loop: a JSON request per line on stdin, `handle(request)`'s dict per line on the answer
    pipe (the original stdout; fd 1 itself then points at stderr)."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    for line in sys.stdin:
        answers.write(json.dumps(handle(json.loads(line))) + "\n")
    return 0
