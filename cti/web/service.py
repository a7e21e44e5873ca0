"""The web service: login, the pages, one WebSocket per page, actions as cti commands.

Trust (README, Security): a browser proves a seat's password once (checked here against the
seat's PBKDF2 hash, counted by the switch's lockout through ``cti.weblogin``), then holds a
session cookie (HttpOnly, SameSite=Strict, expiring). Every action it asks for is the cti
command fs_cli would run, with the logged-in seat as the operator, so cti's one policy
decides; nothing changes on a GET, and POSTs and WebSocket upgrades must come from the page's
own origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Set, Tuple
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from cti import config as cti_config
from cti.config import Config
from cti.domain import passwords
from cti.domain.errors import CtiError
from cti.domain.model import ID_RE, REASON_MAX
from cti.web import records
from cti.web.floor import Floor, Viewer, viewer
from cti.web.link import Link, Unreachable
from cti.web.records import Record, Refused

log = logging.getLogger("cti.web")
STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "cti_session"
PASSWORD_MAX = 128
STATS_EVERY = 10.0  # seconds between two reads of cti.stats while a supervisor looks
RESYNC_EVERY = 30.0  # seconds between two full reads of the floor (heals anything missed)
SWEEP_EVERY = 0.5  # seconds between two looks for expired sessions
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# verb -> (who may be its target, the command): an agent acts on its own seat; the operator
# (the logged-in seat) is always the last argument, so cti's own policy decides
SUPERVISION = ("monitor", "whisper", "barge", "robcall")
# cti's refusal of a command on a call that another switch of the cluster holds (cti/domain/supervision.py)
OTHER_SWITCH = re.compile(r"-ERR other_switch .*? on switch ([A-Za-z0-9.-]+);")
# the agent's own call controls: <verb> <seat> [<argument>] <operator>
CALL_CONTROLS = ("call", "hangup", "hold", "unhold", "transfer", "consult", "complete", "threeway", "cancel", "dtmf", "record")
VERBS = ("checkin", "checkout", "busy", "idle", "help", "help_cancel", "stopcall", "unlock", *SUPERVISION, *CALL_CONTROLS)
NUMBER_RE = re.compile(r"[0-9+*#]{1,32}\Z")  # a number to dial: digits, '+', '*', '#'
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")  # a switch on this host: its recordings_dir is here
KEYS_RE = re.compile(r"[0-9*#ABCDwW]{1,64}\Z")  # DTMF keys; w / W: a pause


@dataclass
class Login:
    token: str
    seat: str
    name: str
    supervisor: bool
    client: str
    expires: float


class Page:
    """One page's WebSocket: what it sees, and a queue of messages to it (in order)."""

    def __init__(self, ws: web.WebSocketResponse, login: Login, who: Viewer) -> None:
        self.ws, self.login, self.who = ws, login, who
        self.outbox: asyncio.Queue[Optional[str]] = asyncio.Queue(maxsize=1000)
        self.resync = False
        self.tasks: Set[asyncio.Future] = set()  # its actions being served

    def send(self, message: Dict[str, Any]) -> None:
        try:
            self.outbox.put_nowait(json.dumps(message, ensure_ascii=False))
        except asyncio.QueueFull:  # a page that does not read: it resyncs when it catches up
            self.resync = True


class Service:
    def __init__(self, config_path: str, port: Optional[int] = None, listen: Optional[str] = None) -> None:
        self.config_path = config_path
        cfg = self.config()
        self.port = cfg.web.port if port is None else port
        self.listen = listen or cfg.web.listen
        self.floor = Floor(cfg)
        self.logins: Dict[str, Login] = {}
        self.pages: Set[Page] = set()
        # one ESL link per switch (web.switches; else the one switch of web.esl), in config order
        self.links: Dict[str, Link] = {sw.name: Link(sw, self._event, self._switch_state) for sw in cfg.web.links()}
        self._seat_locks: Dict[str, asyncio.Lock] = {}
        self._checks = asyncio.Semaphore(1)  # PBKDF2 runs at once on this host (each keeps a core busy)
        self._tasks: List[asyncio.Task] = []
        self._synced = asyncio.Event()
        self._refreshing: Set[str] = set()
        self.runner: Optional[web.AppRunner] = None
        self._recordings_dirs: Dict[str, str] = {}  # each switch's recordings_dir, once read (web.*recordings_dir override)

    def config(self) -> Config:
        return cti_config.load(self.config_path)

    # -- lifecycle ---------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[_headers])
        app.router.add_get("/", self.index)
        app.router.add_get("/me", self.me)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
        app.router.add_get("/ws", self.websocket)
        app.router.add_get("/records", self.index)
        app.router.add_get("/api/records", self.records)
        app.router.add_get("/api/records.csv", self.records_csv)
        app.router.add_get("/recordings/{uuid}", self.recording)
        app.router.add_static("/static/", STATIC, follow_symlinks=False)
        return app

    async def start(self) -> int:
        """Serve; the port it listens on."""
        self.runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.listen, self.port)
        await site.start()
        for job in (*(link.run() for link in self.links.values()), self._sweep(), self._poll()):
            self._tasks.append(asyncio.ensure_future(job))
        sockets = getattr(site._server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else self.port

    async def stop(self) -> None:
        for link in self.links.values():
            link.stop()
        for page in list(self.pages):
            await page.ws.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        if self.runner is not None:
            await self.runner.cleanup()

    # -- the switches ------------------------------------------------------------------------
    @property
    def online(self) -> bool:
        """At least one switch answers: the floor is live (the others' are shown as unreachable)."""
        return any(link.up for link in self.links.values())

    def switches(self) -> List[Dict[str, Any]]:
        """What a page is told of the switches: each one's name and whether it answers (never
        its address, nor why it does not answer: the log says that)."""
        return [{"name": link.name, "up": link.up} for link in self.links.values()]

    def pick(self, name: str = "") -> Link:
        """Switch ``name``'s link if it answers, else the first switch (in config order) that does."""
        link = self.links.get(name)
        if link is not None and link.up:
            return link
        for link in self.links.values():
            if link.up:
                return link
        raise Unreachable("; ".join(f"{link.label}: {link.why}" for link in self.links.values()))

    async def api(self, command: str, switch: str = "") -> str:
        return await self.pick(switch).api(command)

    async def _switch_state(self, link: Link) -> None:
        if link.up:
            await self.resync()  # (what it fired while it was away is read again)
            return
        if not self.online:
            self._synced.clear()
        for page in self.pages:
            page.send(self._switch_message())

    def _switch_message(self) -> Dict[str, Any]:
        return {"type": "switch", "online": self.online, "switches": self.switches()}

    async def resync(self) -> None:
        """Read the whole floor again (from any switch: with several, they share it), and send
        every page its snapshot."""
        try:
            cfg = self.config()
            self.floor.config = cfg
            self.floor.load_status(await self.api("python cti.status json"))
            for hotline in cfg.hotlines:
                self.floor.load_waiting(hotline, await self.api(f"python cti.status {hotline} json"))
            stats = await self.api("python cti.stats json")
            if stats.startswith("{"):
                self.floor.load_stats(stats)
        except (Unreachable, ValueError, CtiError) as exc:
            log.warning("cti web: cannot read the floor: %s", exc)
            for page in self.pages:
                page.send(self._switch_message())
            return
        self._synced.set()
        for page in self.pages:
            page.send(self._view(page))

    def _view(self, page: Page) -> Dict[str, Any]:
        return self.floor.view(page.who, self.online, self.switches())

    def _event(self, link: Link, headers: Dict[str, str]) -> None:
        node = headers.get("CTI-Node", "")
        if node and link.name and node != link.name:
            # a change another switch made, re-fired here (redis.refire): it comes from that
            # switch's own link; only while that one is down (or the switch is not listed) does
            # one link, the first that answers, pass the re-fired copies on
            own = self.links.get(node)
            relay = next((each for each in self.links.values() if each.up), None)
            if (own is not None and own.up) or link is not relay:
                return
        for kind, key in self.floor.apply(headers):
            if kind == "refresh":
                self._refresh_soon(key)
            else:
                self._publish(kind, key)

    def _publish(self, kind: str, key: str) -> None:
        for page in self.pages:
            if kind == "seat" and key in page.who.seats and key in self.floor.seats:
                page.send({"type": "seat", "seat": self.floor.seats[key]})
            elif kind == "queue" and key in page.who.hotlines:
                page.send({"type": "queue", "hotline": key, "waiting": self.floor.queue(key)})

    def _refresh_soon(self, seat: str) -> None:
        if seat in self._refreshing:
            return
        self._refreshing.add(seat)

        async def refresh() -> None:
            try:
                reply = await self.api(f"python cti.status {seat} json")
                if reply.startswith("{"):
                    self.floor.supervision(seat, reply)
                    self._publish("seat", seat)
            except Unreachable:
                pass
            finally:
                self._refreshing.discard(seat)

        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(asyncio.ensure_future(refresh()))

    async def _poll(self) -> None:
        """Statistics while a supervisor looks; the whole floor now and then."""
        last_sync = time.monotonic()
        while True:
            await asyncio.sleep(STATS_EVERY)
            if not self.online:
                continue
            if time.monotonic() - last_sync >= RESYNC_EVERY:
                last_sync = time.monotonic()
                await self.resync()
                continue
            watchers = [p for p in self.pages if p.who.supervisor]
            if not watchers:
                continue
            try:
                reply = await self.api("python cti.stats json")
            except Unreachable:
                continue
            if reply.startswith("{"):
                self.floor.load_stats(reply)
                for page in watchers:
                    page.send({"type": "stats", "stats": self.floor.stats_for(page.who)})

    async def _sweep(self) -> None:
        """Sessions end when they expire: their pages are told and closed."""
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            now = time.time()
            for token, login in list(self.logins.items()):
                if login.expires <= now:
                    del self.logins[token]
            for page in list(self.pages):
                if page.login.token not in self.logins:
                    page.send({"type": "expired"})
                    page.outbox.put_nowait(None)

    # -- HTTP --------------------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    def _login_of(self, request: web.Request) -> Optional[Login]:
        token = request.cookies.get(COOKIE, "")
        login = self.logins.get(token)
        if login is None or login.expires <= time.time():
            return None
        return login

    async def me(self, request: web.Request) -> web.Response:
        login = self._login_of(request)
        if login is None:
            return web.json_response({"seat": None, "expired": COOKIE in request.cookies}, status=401)
        return web.json_response(
            {"seat": login.seat, "name": login.name, "supervisor": login.supervisor, "expires": login.expires}
        )

    async def login(self, request: web.Request) -> web.Response:
        if not _same_origin(request):
            return web.json_response({"error": "-ERR forbidden cross-origin request"}, status=403)
        form = await request.post()
        seat, password = str(form.get("seat", "")).strip(), str(form.get("password", ""))
        client = request.remote or "127.0.0.1"
        if not ID_RE.match(seat):
            return _refused(f"-ERR bad_arg seat {seat[:40]!r} is not an id (letters, digits, '.', '-'; at most 32)")
        if not password or len(password) > PASSWORD_MAX:
            return _refused(
                "-ERR bad_password no password given" if not password else f"-ERR too_long password longer than {PASSWORD_MAX}"
            )
        try:
            cfg = self.config()
        except CtiError as exc:
            return _refused(exc.reply(), 503)
        conf = cfg.seats.get(seat)
        if conf is None:
            return _refused(f"-ERR no_such_seat no seat {seat!r} in {cfg.path}")
        lock = self._seat_locks.setdefault(seat, asyncio.Lock())
        async with lock:  # one attempt per seat at a time: the lockout counts every one
            try:
                link = self.pick()  # one switch for the whole attempt
                reply = await link.api(f"python cti.weblogin {seat} check {client}")
                if not reply.startswith("+OK"):
                    return _refused(reply.strip())
                async with self._checks:
                    right = await asyncio.get_running_loop().run_in_executor(None, passwords.verify, conf.password, password)
                step = "ok" if right else "failed"
                reply = await link.api(f"python cti.weblogin {seat} {step} {client}")
            except Unreachable as exc:
                return _refused(f"-ERR unreachable the switch does not answer ({exc})", 503)
        if not right or not reply.startswith("+OK"):
            return _refused(reply.strip())
        token = secrets.token_urlsafe(32)
        lifetime = cfg.web.session_minutes * 60
        self.logins[token] = Login(token, seat, conf.name, conf.supervisor, client, time.time() + lifetime)
        response = web.json_response({"seat": seat, "name": conf.name, "supervisor": conf.supervisor})
        response.set_cookie(COOKIE, token, max_age=lifetime, httponly=True, samesite="Strict", path="/")
        log.info("cti web: %s logged in from %s", seat, client)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        if not _same_origin(request):
            return web.json_response({"error": "-ERR forbidden cross-origin request"}, status=403)
        login = self._login_of(request)
        if login is not None:
            self.logins.pop(login.token, None)
            for page in list(self.pages):
                if page.login.token == login.token:
                    page.outbox.put_nowait(None)
        response = web.json_response({"ok": True})
        response.del_cookie(COOKIE, path="/")
        return response

    # -- the records page (通话记录) -------------------------------------------------------------
    def _viewer_of(self, request: web.Request) -> Viewer:
        login = self._login_of(request)
        if login is None:
            raise Refused("-ERR not_signed_in log in first (or again: the session expired)", 401)
        try:
            cfg = self.config()
        except CtiError as exc:
            raise Refused(exc.reply(), 503) from None
        if login.seat not in cfg.seats:
            raise Refused(f"-ERR no_such_seat no seat {login.seat!r} in {cfg.path}", 403)
        return viewer(cfg, login.seat)

    async def _search(
        self, link: Link, who: Viewer, search: records.Search, before: str, limit: int, exact: bool = True
    ) -> Tuple[List[records.Record], str]:
        """One page of ``who``'s records on switch ``link`` (at most ``limit``), newest first, and
        the uuid to page on ("": no more). The switch filters by one field; every record is checked
        here as well (the viewer's scope, the other fields), reading further switch pages while a
        page is short and (``exact``) until one record past it says there is more (at most
        ``records.PAGES_MAX`` reads); not ``exact`` (the export), a full page whose switch says
        there is more ends there (its next page may hold none of the viewer's)."""
        rows: List[records.Record] = []
        for _ in range(records.PAGES_MAX):
            batch, after = records.load(await link.api(records.command(search, who, before, limit)))
            rows.extend(r for r in batch if records.visible(r, who) and records.matches(search, r))
            if len(rows) > limit:  # one more than the page: there is a next page, after its last record
                return rows[:limit], str(rows[limit - 1].get("uuid") or "")
            if not after or not batch:
                return rows, ""
            if not exact and len(rows) == limit:
                return rows, after
            before = after
        return rows, before

    async def _gather(
        self, who: Viewer, search: records.Search, before: str, limit: int, exact: bool = True
    ) -> Tuple[List[records.Record], str, List[str]]:
        """One page of ``who``'s records from every switch (``web.switches``; else the one):
        each switch that answers is asked at once (its own page after its place in ``before``),
        the pages merged newest first (``records.merge``). The records, the next page's cursor,
        and the switches that did not answer (their records are missing from this page: it says
        so; their place is kept, so the next page reads them from where they stood). Unreachable
        when none answers; a switch's refusal (a bad date, ...) is the search's."""
        links = list(self.links.values())
        state = records.places(before, [link.name for link in links])
        asked = [link for link in links if state[link.name] != records.DONE]
        answers = await asyncio.gather(
            *(self._search(link, who, search, state[link.name], limit, exact) for link in asked), return_exceptions=True
        )
        pages: Dict[str, records.Page] = {}
        missing: List[str] = []
        failure: Optional[BaseException] = None
        for link, answer in zip(asked, answers):
            if isinstance(answer, Unreachable) or (isinstance(answer, Refused) and answer.status >= 500):
                log.warning("cti web: records of %s missing from a search: %s", link.label, answer)
                missing.append(link.name)
                failure = failure or answer
            elif isinstance(answer, BaseException):
                raise answer
            else:
                pages[link.name] = answer
        if asked and not pages:
            raise failure or Unreachable("no switch answers")
        rows, after = records.merge(state, pages, limit)
        return rows, records.cursor(after), missing

    async def records(self, request: web.Request) -> web.Response:
        """``GET /api/records?from=&to=&hotline=&seat=&caller=&outcome=&limit=&before=``: a page of
        the viewer's records, with what the search form offers it (its hotlines and seats), and
        the switches whose records are missing from it (``missing``: they did not answer)."""
        try:
            who = self._viewer_of(request)
            search = records.parse(request.query)
            rows, after, missing = await self._gather(who, search, search.before, search.limit)
        except Refused as exc:
            return _refused(exc.reply, exc.status)
        except Unreachable:
            return _refused("-ERR unreachable the switch does not answer", 503)
        cfg = self.config()
        scope = {
            "supervisor": who.supervisor,
            "hotlines": [{"id": h, "name": cfg.hotlines[h].name} for h in who.hotlines if h in cfg.hotlines],
            "seats": [{"id": s, "name": cfg.seats[s].name} for s in who.seats if s in cfg.seats],
        }
        body = {"records": rows, "next": after, "scope": scope, "today": records.today(), "missing": missing}
        return web.json_response(body)

    async def records_csv(self, request: web.Request) -> web.Response:
        """The whole search (every page, at most ``records.EXPORT_MAX`` records) as CSV for Excel;
        refused while a switch does not answer (the file would lack its records, unsaid)."""
        try:
            who = self._viewer_of(request)
            search = records.parse(request.query)
            rows: List[records.Record] = []
            before = search.before
            while len(rows) < records.EXPORT_MAX:  # every page, in order, each record read once
                batch, before, missing = await self._gather(who, search, before, records.LIMIT_MAX, exact=False)
                if missing:
                    names = ", ".join(missing)
                    raise Refused(f"-ERR unreachable switch {names} does not answer: the export would lack its records", 503)
                rows.extend(batch)
                if not before or not batch:
                    break
        except Refused as exc:
            return _refused(exc.reply, exc.status)
        except Unreachable:
            return _refused("-ERR unreachable the switch does not answer", 503)
        lang = "zh" if request.query.get("lang") == "zh" else "en"
        name = f"cti-records-{search.start or records.today()}" + (f"-{search.end}" if search.end else "") + ".csv"
        return web.Response(
            body=records.to_csv(rows[: records.EXPORT_MAX], lang),
            headers={"Content-Type": "text/csv; charset=utf-8", "Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def recordings_dir(self, link: Optional[Link] = None) -> str:
        """Where switch ``link``'s recordings are on this host: its ``web.switches.<node>.recordings_dir``,
        else ``web.recordings_dir``, else the switch's own ``recordings_dir`` (asked once over ESL)."""
        cfg = self.config().web
        link = link or self.pick()
        own = next((sw.recordings_dir for sw in cfg.switches if sw.name == link.name and sw.recordings_dir), "")
        if own or cfg.recordings_dir:
            return own or cfg.recordings_dir
        if link.name not in self._recordings_dirs:
            found = (await link.api("global_getvar recordings_dir")).strip()
            if not found.startswith("/"):
                raise Refused("-ERR no_recording the switch names no recordings_dir: set web.recordings_dir", 503)
            self._recordings_dirs[link.name] = found
        return self._recordings_dirs[link.name]

    async def _find(self, uuid: str) -> Tuple[Link, Record]:
        """The record ``uuid`` and the switch that has it: every switch that answers is asked at
        once (a call's record is on the switch that carried it)."""
        links = list(self.links.values())
        answers = await asyncio.gather(*(link.api(records.lookup(uuid)) for link in links), return_exceptions=True)
        missing: List[Link] = []
        for link, answer in zip(links, answers):
            if isinstance(answer, Unreachable):
                missing.append(link)
                continue
            if isinstance(answer, BaseException):
                raise answer
            found, _ = records.load(answer)
            record = next((r for r in found if r.get("uuid") == uuid), None)
            if record is not None:
                return link, record
        if missing and len(missing) == len(links):
            raise Unreachable("no switch answers")
        if missing:
            names = ", ".join(link.name for link in missing)
            raise Refused(f"-ERR unreachable no switch that answers has call {uuid}; switch {names} does not answer", 503)
        raise Refused(f"-ERR no_record no call record has uuid {uuid}", 404)

    async def recording(self, request: web.Request) -> web.StreamResponse:
        """``GET /recordings/<record uuid>``: the call's recording (HTTP Range: seeking), once the
        switch's record says which file and the viewer may hear that call; never a client's path.
        With several switches the record is looked up on each, and the file under that switch's
        recordings (on another host: a mount of its recordings_dir here, web.switches.<node>.recordings_dir)."""
        uuid = request.match_info["uuid"]
        try:
            who = self._viewer_of(request)
            records.lookup(uuid)  # a well-formed uuid before anything is asked
            link, record = await self._find(uuid)
            if not records.visible(record, who):
                raise records.refuse(record, who)
            if not record.get("recording") and record.get("pruned"):
                day = time.strftime("%Y-%m-%d", time.localtime(float(record["pruned"])))
                raise Refused(f"-ERR no_recording the recording of call {uuid} was deleted after record.keep_days ({day})", 404)
            if not record.get("recording"):
                raise Refused(f"-ERR no_recording call {uuid} has no recording", 404)
            root = await self.recordings_dir(link)
            path = records.resolve(root, str(record["recording"]))
            if not path.is_file():
                raise Refused(self._not_here(link, uuid, str(record["recording"]), root), 404)
        except Refused as exc:
            if exc.status == 403:
                log.warning("cti web: recording %s refused: %s", uuid, exc.reply)
            return _refused(exc.reply, exc.status)
        except Unreachable:
            return _refused("-ERR unreachable the switch does not answer", 503)
        log.info("cti web: %s hears recording %s (%s)", who.seat, uuid, request.headers.get("Range", "whole file"))
        return web.FileResponse(path, headers={"Content-Type": "audio/wav"})

    def _not_here(self, link: Link, uuid: str, relative: str, root: str) -> str:
        """Why a recording the record names is not under ``root``: gone, or (a switch on another
        host whose recordings are not mounted here) never on this host."""
        cfg = self.config().web
        mounted = any(sw.name == link.name and sw.recordings_dir for sw in cfg.switches)
        if link.name and not mounted and link.host not in LOCAL_HOSTS:
            return (
                f"-ERR no_recording the recording of call {uuid} is on switch {link.name}'s host ({relative}), "
                f"not under {root} here: mount its recordings_dir here and set web.switches.{link.name}.recordings_dir"
            )
        return f"-ERR no_recording the recording of call {uuid} is gone ({relative})"

    # -- the page's socket -------------------------------------------------------------------
    async def websocket(self, request: web.Request) -> web.StreamResponse:
        if not _same_origin(request):
            return web.Response(status=403, text="cross-origin WebSocket refused")
        login = self._login_of(request)
        if login is None:
            return web.Response(status=401, text="not logged in")
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=64 * 1024)
        await ws.prepare(request)
        cfg = self.config()
        page = Page(ws, login, viewer(cfg, login.seat))
        page.send(self._view(page) if self._synced.is_set() else self._switch_message())
        self.pages.add(page)
        writer = asyncio.ensure_future(self._write(page))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                if page.login.token not in self.logins:
                    break
                task = asyncio.ensure_future(self._serve(page, msg.data))
                page.tasks.add(task)
                task.add_done_callback(page.tasks.discard)
        finally:
            self.pages.discard(page)
            page.outbox.put_nowait(None)
            with contextlib.suppress(BaseException):
                await writer
        return ws

    async def _write(self, page: Page) -> None:
        while True:
            text = await page.outbox.get()
            if text is None or page.ws.closed:
                break
            if page.resync and page.outbox.empty():
                page.resync = False
                text = json.dumps(self._view(page), ensure_ascii=False)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await page.ws.send_str(text)
        if not page.ws.closed:
            await page.ws.close()

    async def _serve(self, page: Page, text: str) -> None:
        try:
            msg = json.loads(text)
            if not isinstance(msg, dict):
                raise ValueError("not an object")
        except ValueError:
            page.send({"type": "reply", "id": None, "reply": "-ERR bad_arg not a JSON message"})
            return
        if msg.get("type") == "resync":
            page.send(self._view(page))
            return
        try:
            command = self.command(page.login, msg)
            reply = await self.run(command, str(msg.get("seat") or page.login.seat))
        except CtiError as exc:
            reply = exc.reply()
        except Unreachable:
            reply = "-ERR unreachable the switch does not answer"
        page.send({"type": "reply", "id": msg.get("id"), "verb": msg.get("verb"), "reply": reply})

    async def run(self, command: str, seat: str) -> str:
        """Run a page's command on the switch that must: the one holding the seat's call when
        the events said which, else any; a switch that answers ``-ERR other_switch`` (the call
        is another switch's) has done nothing, and the command goes to the switch it names."""
        row = self.floor.seats.get(seat) or {}
        link = self.pick(str(row.get("switch") or ""))
        reply = _line(await link.api(command))
        found = OTHER_SWITCH.match(reply)
        if found is None or found.group(1) == link.name:
            return reply
        holder = self.links.get(found.group(1))
        if holder is None:  # a switch of the cluster the web service does not know
            return f"{reply} (web.switches does not list switch {found.group(1)})"
        if not holder.up:
            return f"-ERR unreachable seat {seat}'s call is on switch {holder.name}, which does not answer now"
        return _line(await holder.api(command))

    def command(self, login: Login, msg: Dict[str, Any]) -> str:
        """The cti command for a page's action, the logged-in seat its operator; CtiError when
        the message itself is malformed (cti refuses everything else)."""
        verb, me = str(msg.get("verb", "")), login.seat
        seat = str(msg.get("seat") or me)
        if verb not in VERBS:
            raise CtiError("bad_arg", f"no action {verb[:30]!r}")
        if not ID_RE.match(seat):
            raise CtiError("bad_arg", f"seat {seat[:40]!r} is not an id")
        if verb == "checkin":
            if seat != me:
                raise CtiError("not_supervisor", f"{me} may sign in only itself on the web")
            hotlines = msg.get("hotlines") or ["-"]
            if not isinstance(hotlines, list) or not all(isinstance(h, str) and (h == "-" or ID_RE.match(h)) for h in hotlines):
                raise CtiError("bad_arg", "hotlines: a list of hotline ids")
            phone, kind = str(msg.get("phone", "")).strip(), str(msg.get("phone_type") or "internal")
            role = "supervisor" if msg.get("role") == "supervisor" else "agent"
            if not phone or len(phone) > 100 or any(c.isspace() for c in phone) or kind not in ("internal", "external"):
                raise CtiError("bad_arg", "a phone: an extension or a number, no spaces")
            return f"python cti.weblogin {me} checkin {','.join(hotlines)} {phone} {kind} {role}"
        if verb == "busy":
            reason = str(msg.get("reason") or "")
            if not reason or len(reason) > REASON_MAX or any(c.isspace() for c in reason) or not reason.isprintable():
                raise CtiError("bad_arg", "a busy reason is one word")
            return f"python cti.busy {seat} {reason} {me}"
        if verb in ("help", "help_cancel"):
            if seat != me:  # cti.help from ESL takes no operator: the web asks only for its own seat
                raise CtiError("not_supervisor", f"{me} may ask for help only for itself")
            return f"python cti.help {me}" + (" cancel" if verb == "help_cancel" else "")
        if verb in SUPERVISION:
            return f"python cti.{verb} {seat} {me}"
        if verb == "call":
            number, hotline = str(msg.get("number") or ""), str(msg.get("hotline") or "-")
            if not NUMBER_RE.match(number):
                raise CtiError("bad_number", f"{number[:40]!r} is not a number to call (digits, '+', '*', '#'; 1 to 32)")
            if hotline != "-" and not ID_RE.match(hotline):
                raise CtiError("bad_arg", f"hotline {hotline[:40]!r} is not an id")
            return f"python cti.call {seat} {number} {hotline} {me}"
        if verb in ("transfer", "consult"):
            target = str(msg.get("target") or "")
            if not (ID_RE.match(target) or NUMBER_RE.match(target)):
                raise CtiError("bad_arg", f"target {target[:40]!r} is neither a seat, a hotline nor a number")
            return f"python cti.{verb} {seat} {target} {me}"
        if verb == "record":
            op = str(msg.get("op") or "")
            if op not in ("pause", "resume"):
                raise CtiError("bad_arg", "op: pause or resume")
            return f"python cti.record {seat} {op} {me}"
        if verb == "dtmf":
            keys = str(msg.get("keys") or "")
            if not KEYS_RE.match(keys):
                raise CtiError("bad_arg", f"keys {keys[:70]!r}: 1 to 64 of 0-9 * # A B C D, w or W to pause")
            return f"python cti.dtmf {seat} {keys} {me}"
        # checkout, idle, stopcall, unlock, and the call's hangup, hold, unhold, complete, threeway, cancel
        return f"python cti.{verb} {seat} {me}"


def _line(reply: str) -> str:
    lines = reply.strip().splitlines()
    return lines[0] if lines else "-ERR no reply"


def _refused(reply: str, status: int = 403) -> web.Response:
    return web.json_response({"error": reply}, status=status)


def _same_origin(request: web.Request) -> bool:
    """A state-changing request comes from a page of this service: its Origin names this host."""
    origin = request.headers.get("Origin", "")
    return bool(origin) and urlsplit(origin).netloc == request.host


@web.middleware
async def _headers(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    response = await handler(request)
    if not response.prepared:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
    return response
