"""A small inbound Event Socket client for the live tests: ``api``, ``bgapi``, events.

Only the standard library: the live layer runs wherever pytest does. The protocol is
FreeSWITCH's mod_event_socket: text headers, a blank line, then ``Content-Length`` bytes.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.parse
from typing import Callable, Dict, List, Optional, Tuple

Headers = Dict[str, str]


def target() -> Tuple[str, int, str]:
    return (
        os.environ.get("FS_ESL_HOST", "127.0.0.1"),
        int(os.environ.get("FS_ESL_PORT", "8021")),
        os.environ.get("FS_ESL_PASSWORD", "ClueCon"),
    )


class ESLError(Exception):
    pass


class ESL:
    """One connection. ``api`` answers what fs_cli prints (an empty body reads ``-ERR no
    reply``, FACTS.md §2). Events arrive on a reader thread into ``events``."""

    def __init__(self, host: str, port: int, password: str, timeout: float = 5.0) -> None:
        self.address = (host, port, password)  # (fs_cli reaches the same switch: Live.install)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(None)
        self._buf = b""
        self._lock = threading.Lock()  # one command at a time
        self._replies: List[Tuple[Headers, str]] = []
        self._cond = threading.Condition()
        self.events: List[Headers] = []
        self._closed = False
        head, _ = self._read_message()
        if head.get("Content-Type") != "auth/request":
            raise ESLError(f"no auth request: {head}")
        self._send(f"auth {password}")
        head, _ = self._read_message()
        if not head.get("Reply-Text", "").startswith("+OK"):
            raise ESLError(f"auth failed: {head.get('Reply-Text')}")
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    # -- wire ------------------------------------------------------------------------------
    def _send(self, command: str) -> None:
        self.sock.sendall(command.encode() + b"\n\n")

    def _read_line_block(self) -> bytes:
        while b"\n\n" not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ESLError("connection closed")
            self._buf += chunk
        block, self._buf = self._buf.split(b"\n\n", 1)
        return block

    def _read_body(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ESLError("connection closed")
            self._buf += chunk
        body, self._buf = self._buf[:n], self._buf[n:]
        return body

    def _read_message(self) -> Tuple[Headers, str]:
        head: Headers = {}
        for line in self._read_line_block().decode().split("\n"):
            name, _, value = line.partition(": ")
            head[name] = value
        body = self._read_body(int(head["Content-Length"])).decode() if "Content-Length" in head else ""
        return head, body

    def _read_loop(self) -> None:
        try:
            while not self._closed:
                head, body = self._read_message()
                kind = head.get("Content-Type", "")
                if kind == "text/event-plain":
                    event = _parse_event(body)
                    event["_received"] = repr(time.perf_counter())  # when this client got it
                    with self._cond:
                        self.events.append(event)
                        self._cond.notify_all()
                elif kind in ("api/response", "command/reply"):
                    with self._cond:
                        self._replies.append((head, body))
                        self._cond.notify_all()
                elif kind == "text/disconnect-notice":
                    break
        except (ESLError, OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def _command(self, command: str, timeout: float = 30.0) -> Tuple[Headers, str]:
        with self._lock:
            self._send(command)
            deadline = time.monotonic() + timeout
            with self._cond:
                while not self._replies:
                    if self._closed:
                        raise ESLError("connection closed")
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise ESLError(f"no reply to {command!r}")
                    self._cond.wait(left)
                return self._replies.pop(0)

    # -- commands -----------------------------------------------------------------------------
    def api(self, command: str, timeout: float = 30.0) -> str:
        head, body = self._command(f"api {command}", timeout)
        return body

    def bgapi(self, command: str) -> str:
        head, _ = self._command(f"bgapi {command}")
        return head.get("Job-UUID", "")

    def subscribe(self, spec: str = "ALL") -> None:
        head, _ = self._command(f"event plain {spec}")
        if not head.get("Reply-Text", "").startswith("+OK"):
            raise ESLError(f"event subscription failed: {head}")

    def sendevent(self, name: str, headers: Headers) -> str:
        lines = "\n".join(f"{k}: {v}" for k, v in headers.items())
        head, _ = self._command(f"sendevent {name}\n{lines}")
        return head.get("Reply-Text", "")

    def wait_event(self, match: Callable[[Headers], bool], timeout: float = 5.0, since: int = 0) -> Headers:
        """The first event (from index ``since``) that ``match`` accepts."""
        deadline = time.monotonic() + timeout
        with self._cond:
            i = since
            while True:
                while i < len(self.events):
                    if match(self.events[i]):
                        return self.events[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise ESLError("no such event in time")
                self._cond.wait(left)

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def close(self) -> None:
        self._closed = True
        try:
            self._send("exit")
        except OSError:
            pass
        self.sock.close()


def _parse_event(body: str) -> Headers:
    head_text, _, rest = body.partition("\n\n")
    event: Headers = {}
    for line in head_text.split("\n"):
        name, sep, value = line.partition(": ")
        if sep:
            event[name] = urllib.parse.unquote(value)
    if "Content-Length" in event:
        event["_body"] = rest[: int(event["Content-Length"])]
    return event


def connect(timeout: float = 2.0, address: Optional[Tuple[str, int, str]] = None) -> Optional[ESL]:
    """A connection to the switch at ``address`` (default: FS_ESL_*); None when none answers."""
    host, port, password = address or target()
    try:
        return ESL(host, port, password, timeout)
    except (OSError, ESLError):
        return None
