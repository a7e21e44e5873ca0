"""An ESL front for the shim: a small event-socket *server* that answers like the switch's
mod_event_socket, so the web service reaches the shim's cti exactly as it reaches a real switch
(genesis, ``auth``, ``event plain ...``, ``api python cti.<verb> ...``).

It is a test fixture imitating the switch, hand-written on purpose: ``api`` runs the command
through the shim's ``freeswitch.API()`` (so ``python cti.*`` imports, reloads and calls the
real entry modules, as mod_python3 does), and every ``cti::`` event the shim's core fires goes
to each connection that subscribed, as ``text/event-plain`` with URL-encoded values.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.parse
from typing import Callable, Dict, Optional, Set

import freeswitch

SUBCLASSES = ("cti::seat", "cti::queue", "cti::supervisor")


class _Conn:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.subscribed = False
        self.authed = False

    def send(self, head: Dict[str, str], body: str = "") -> None:
        data = body.encode()
        if data:
            head = {"Content-Length": str(len(data)), **head}
        text = "".join(f"{k}: {v}\n" for k, v in head.items()) + "\n"
        self.writer.write(text.encode() + data)


class EslFront:
    def __init__(self, password: str = "ClueCon") -> None:
        self.password = password
        self.conns: Set[_Conn] = set()
        self.commands: list = []  # every api command received, in order
        self.replies: list = []  # (command, what it answered), in order
        # canned answers: a command (its first words) -> what answers it, instead of the shim
        # (a command the checkout does not have yet, e.g. the switch side's cti.records)
        self.canned: Dict[str, Callable[[str], str]] = {}
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._server: Optional[asyncio.base_events.Server] = None
        self.port = 0
        self._consumer = freeswitch.EventConsumer()
        for sub in SUBCLASSES:
            self._consumer.bind("CUSTOM", sub)
        self._stopping = False
        self._pump = threading.Thread(target=self._pump_events, daemon=True)
        self._pump.start()
        self.start()

    # -- the server's life (a test stops and starts it: "the switch is down") ----------------
    def start(self) -> None:
        self._run(self._start())

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    def down(self) -> None:
        """The switch goes away: no new connection, the open ones closed."""
        self._run(self._down())

    async def _down(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for conn in list(self.conns):
            conn.writer.close()
        self.conns.clear()

    def drop(self) -> None:
        """The open connections break (the switch stays up)."""
        self._run(self._drop())

    async def _drop(self) -> None:
        for conn in list(self.conns):
            conn.writer.close()
        self.conns.clear()

    def close(self) -> None:
        self._stopping = True
        self.down()
        self._consumer.cleanup()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    def answer(self, command: str, reply: Callable[[str], str]) -> None:
        """``api <command> ...`` (the command itself or with arguments) is answered by
        ``reply(<the whole command>)``, recorded in ``commands`` and ``replies`` as any other."""
        self.canned[command] = reply

    def forget(self, command: str) -> None:
        self.canned.pop(command, None)

    def _canned(self, command: str) -> Optional[Callable[[str], str]]:
        for prefix, reply in self.canned.items():
            if command == prefix or command.startswith(prefix + " "):
                return reply
        return None

    def _run(self, coro) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    # -- one connection ------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(writer)
        self.conns.add(conn)
        conn.send({"Content-Type": "auth/request"})
        try:
            while True:
                block = await reader.readuntil(b"\n\n")
                await self._command(conn, block.decode().strip())
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.conns.discard(conn)
            writer.close()

    async def _command(self, conn: _Conn, command: str) -> None:
        word, _, rest = command.partition(" ")
        if word == "auth":
            if rest == self.password:
                conn.authed = True
                conn.send({"Content-Type": "command/reply", "Reply-Text": "+OK accepted"})
            else:
                conn.send({"Content-Type": "command/reply", "Reply-Text": "-ERR invalid"})
                conn.send({"Content-Type": "text/disconnect-notice"}, "Disconnected, goodbye.\n")
                conn.writer.close()
            return
        if not conn.authed:
            conn.send({"Content-Type": "command/reply", "Reply-Text": "-ERR command not found"})
            return
        if word == "event":
            conn.subscribed = True
            conn.send({"Content-Type": "command/reply", "Reply-Text": "+OK event listener enabled plain"})
        elif word == "api":
            self.commands.append(rest)
            canned = self._canned(rest)
            if canned is not None:
                body = canned(rest)
            else:
                body = await self.loop.run_in_executor(None, freeswitch.API().executeString, rest)
            self.replies.append((rest, body))
            conn.send({"Content-Type": "api/response"}, body)
        elif word == "exit":
            conn.send({"Content-Type": "command/reply", "Reply-Text": "+OK bye"})
            conn.writer.close()
        else:
            conn.send({"Content-Type": "command/reply", "Reply-Text": "-ERR command not found"})

    # -- events -------------------------------------------------------------------------------
    def _pump_events(self) -> None:
        while not self._stopping:
            ev = self._consumer.pop(1, 100)
            if ev is None:
                continue
            headers = {
                "Event-Name": "CUSTOM",
                "Core-UUID": "00000000-0000-4000-8000-00000000f5f5",
                "Event-Date-Timestamp": str(int(time.time() * 1e6)),
                **ev.headers,
            }
            body = "".join(f"{k}: {urllib.parse.quote(v, safe='')}\n" for k, v in headers.items()) + "\n"
            self.loop.call_soon_threadsafe(self._broadcast, body)

    def _broadcast(self, body: str) -> None:
        for conn in list(self.conns):
            if conn.subscribed:
                conn.send({"Content-Type": "text/event-plain"}, body)
