"""A switch, over ESL (genesis): commands, and the cti:: events of one subscription.

One connection carries both: ``api`` replies and events are told apart by their
Content-Type. Commands go one at a time (genesis matches a reply to the oldest command
waiting). When the connection drops, or never comes up, the link says so (``on_state``) and
tries again every ``RETRY`` seconds at most, for ever.

A link named after its switch's ``redis.node`` (``web.switches``) checks, each time it
connects, that the switch there is that node (``cti.status json`` names it): a switch behind
the wrong address would otherwise have its events taken for another's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Awaitable, Callable, Dict, Optional

from genesis import Inbound

from cti.config import SwitchConf

log = logging.getLogger("cti.web")

SUBSCRIPTION = "event plain CUSTOM cti::seat cti::queue cti::supervisor"
SUBCLASSES = ("cti::seat", "cti::queue", "cti::supervisor")
RETRY = 1.0  # seconds between two connection attempts, at most
COMMAND_TIMEOUT = 10.0  # a command the switch has not answered by then: the connection is dropped

Headers = Dict[str, str]


class Unreachable(Exception):
    """The switch does not answer on ESL (now)."""


class Link:
    def __init__(
        self,
        switch: SwitchConf,
        on_event: Callable[[Link, Headers], None],
        on_state: Callable[[Link], Awaitable[None]],
    ) -> None:
        self.name = switch.name  # its redis.node ("": the one switch of web.esl)
        self.host, self.port, self.password = switch.host, switch.port, switch.password
        self.on_event = on_event
        self.on_state = on_state
        self.up = False
        self.why = "not connected yet"
        self._client: Optional[Inbound] = None
        self._lock = asyncio.Lock()
        self._stopping = False
        self._drop = asyncio.Event()

    @property
    def label(self) -> str:
        return f"switch {self.name} at {self.host}:{self.port}" if self.name else f"the switch at {self.host}:{self.port}"

    async def run(self) -> None:
        """Connect, subscribe, serve until the connection drops; again, until ``stop``."""
        pause = 0.1
        while not self._stopping:
            client = Inbound(self.host, self.port, self.password, timeout=3)
            try:
                await asyncio.wait_for(client.start(), 5.0)
                for name in SUBCLASSES:
                    client.on(name, self._event)
                reply = await asyncio.wait_for(client.send(SUBSCRIPTION), COMMAND_TIMEOUT)
                if not str(reply.get("Reply-Text", "")).startswith("+OK"):
                    raise Unreachable(f"event subscription refused: {reply.get('Reply-Text')}")
                if self.name:
                    await self._check_node(client)
                self._client = client
                self._drop.clear()
                self.up, self.why = True, ""
                log.info("cti web: connected to %s", self.label)
                await self.on_state(self)
                pause = 0.1
                producer = client.producer
                waits = [asyncio.ensure_future(self._drop.wait())]
                if producer is not None:
                    waits.append(producer)
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                waits[0].cancel()
                self.why = "the connection to the switch dropped"
            except Exception as exc:  # refused, timed out, wrong password, wrong node: say why, try again
                why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if why != self.why and not self.up:  # said once, not every second
                    log.warning("cti web: cannot reach %s: %s", self.label, why)
                self.why = why
            finally:
                self._client = None
                try:
                    await asyncio.wait_for(client.stop(), 2.0)
                except Exception:
                    pass
                if self.up:
                    self.up = False
                    if self._stopping:
                        self.why = "the web service stopped"
                    else:
                        log.warning("cti web: %s is unreachable: %s", self.label, self.why)
                        await self.on_state(self)
            if not self._stopping:
                await asyncio.sleep(pause)
                pause = min(RETRY, pause * 2)

    async def _check_node(self, client: Inbound) -> None:
        """The switch there is the cti node this link is named after (where cti says so)."""
        reply = await asyncio.wait_for(client.send("api python cti.status json"), COMMAND_TIMEOUT)
        try:
            node = json.loads(reply.body or "").get("node", "")
        except (ValueError, AttributeError):
            return  # cti answers -ERR now (a broken config...): the commands will say so
        if node and node != self.name:
            raise Unreachable(
                f"the switch at {self.host}:{self.port} is cti node {node!r}, not {self.name!r} "
                "(web.switches names each switch by its redis.node)"
            )

    def stop(self) -> None:
        self._stopping = True
        self._drop.set()

    async def _event(self, event: Dict[str, object]) -> None:
        # genesis starts one task per event, in arrival order; nothing here awaits, so the
        # events are handled in the order the switch sent them
        headers = {k: v if isinstance(v, str) else ",".join(map(str, v)) for k, v in event.items()}  # type: ignore[call-overload]
        try:
            self.on_event(self, headers)
        except Exception:
            log.exception("cti web: an event could not be handled: %s", headers.get("CTI-Action"))

    async def api(self, command: str) -> str:
        """``api <command>``: the switch's reply (one line for a cti command), or Unreachable."""
        async with self._lock:
            client = self._client
            if client is None:
                raise Unreachable(self.why)
            try:
                reply = await asyncio.wait_for(client.send(f"api {command}"), COMMAND_TIMEOUT)
            except Exception as exc:
                self._drop.set()  # a reply may still come and would answer the next command
                raise Unreachable(f"{type(exc).__name__}: {exc}") from None
        body = reply.body or ""
        return body if body else "-ERR no reply"
