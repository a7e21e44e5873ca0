"""Cluster test harness: a private redis-server, and cti nodes in processes of their own."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent


class RedisServer:
    """``redis-server`` (Debian's package) on a unix socket of its own; no persistence, or with
    ``persist`` an append-only file written on every change (a restart keeps the data, as a
    deployment's would: benchmarks/shift.py's redis fault)."""

    def __init__(self, where: Path, perm: str = "700", persist: bool = False) -> None:
        self.perm = perm  # 777 when a switch running as another user must reach it
        self.persist = persist
        self.dir = where
        self.sock = where / "redis.sock"
        self.url = f"unix://{self.sock}"
        self.proc: Optional[subprocess.Popen] = None
        self._clients: list = []

    def start(self) -> RedisServer:
        exe = shutil.which("redis-server")
        assert exe, "redis-server is not installed (scripts/test.sh installs Debian's redis-server)"
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                "0",
                "--unixsocket",
                str(self.sock),
                "--unixsocketperm",
                self.perm,
                "--save",
                "",
                "--appendonly",
                *(("yes", "--appendfsync", "always") if self.persist else ("no",)),
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.sock.exists():  # (a refused connect leaks redis-py 4.3's socket)
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
        import redis

        while True:  # with persist, it reads its append-only file first
            try:
                self.client().ping()
                return self
            except redis.BusyLoadingError:
                assert time.monotonic() < deadline, "redis-server did not load its data"
                time.sleep(0.02)

    def stop(self) -> None:
        for c in self._clients:
            c.close()
        self._clients.clear()
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def client(self) -> Any:
        import redis

        c = redis.Redis(unix_socket_path=str(self.sock), decode_responses=True)
        self._clients.append(c)
        return c


class Node:
    """A cti node: a shim switch with cti, in its own process (``node.py``)."""

    def __init__(self, name: str, conf: Path) -> None:
        self.name = name
        self.conf = conf
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> Node:
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "node.py"), str(self.conf)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        return self

    def run(self, code: str) -> Any:
        """Run ``code`` in the node; the value it left in ``_``."""
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(textwrap.dedent(code)) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"node {self.name} died"
        out = json.loads(line)
        if "err" in out:
            raise AssertionError(f"node {self.name}:\n{out['err']}")
        return out["ok"]

    def cti(self, command: str) -> str:
        return self.run(f"_ = sw.cti({command.split(' ', 1)[0]!r}, {[*command.split(' ', 1), ''][1]!r})")

    def kill(self) -> None:
        """The switch dies: no clean-up of its own."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    pipe.close()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            try:
                self.run("sw.api('python cti.watcher stop'); time.sleep(0.05)")
            except AssertionError:
                pass
            self.kill()
