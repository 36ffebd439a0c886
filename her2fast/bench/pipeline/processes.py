"""The sides' processes: the worker loop inside one, and the driver's handle on it.

The driver starts ``python -m her2fast.bench.pipeline --worker CONFIG`` and sends it JSON commands,
one run at a time; the worker answers each with one JSON line.
"""

from __future__ import annotations

import json
import sys

from .sides import _OursSide, _ReferenceSide

__all__: list[str] = []


def _worker(argv: list[str]) -> int:
    """A side's process (``python -m her2fast.bench.pipeline --worker CONFIG``): JSON commands in on
    stdin, one JSON line out per command on the process's original stdout (everything else the
    process prints goes to stderr)."""
    import os

    cfg = json.loads(argv[1])
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # prints (Python or native) cannot corrupt the channel
    sys.stdout = sys.stderr

    def send(obj: dict) -> None:
        channel.write(json.dumps(obj) + "\n")
        channel.flush()

    side = _OursSide(cfg) if cfg["side"] == "ours" else _ReferenceSide(cfg)
    send({"pid": os.getpid(), **side.info})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("cmd") != "run":
            break
        send(side.run(**cmd.get("args", {})))
    return 0


class _Process:
    """One side in a process of its own (spawned with this Python), driven a run at a time."""

    def __init__(self, cfg: dict) -> None:
        import subprocess

        self.side = cfg["side"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "her2fast.bench.pipeline", "--worker", json.dumps(cfg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.info = self._receive()

    def _receive(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            from ...errors import Her2FastError

            code = self.proc.wait()
            self._close_pipes()
            raise Her2FastError(
                f"the benchmark's {self.side} process stopped (exit code {code}); its error is printed above"
            )
        return json.loads(line)

    def run(self, **args) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": "run", "args": args}) + "\n")
        self.proc.stdin.flush()
        return self._receive()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None and not pipe.closed:
                try:
                    pipe.close()
                except OSError:
                    pass

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=60)
            except Exception:  # noqa: BLE001 - a process that does not stop is killed
                self.proc.kill()
                self.proc.wait()
        self._close_pipes()
