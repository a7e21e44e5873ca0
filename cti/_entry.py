"""What every entry module calls: parse the arguments, run the use case, answer one line.

``api`` serves ``python cti.<command> <args>`` (fs_cli, ESL); ``dialplan`` serves the dialplan
application ``<action application="python" data="cti.<command> <args>"/>``. Whatever happens,
the caller gets ``+OK ...`` or ``-ERR <code> <message>``, never mod_python3's ``-ERR no reply``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from cti import app as wiring
from cti.domain import record_search, record_stats, stats_report
from cti.domain.errors import CtiError, brief
from cti.domain.model import CAUSES, Phone, check_id, check_reason
from cti.domain.seats import Seats
from cti.switch import dial, events
from cti.switch.api import SessionChannel

PASSWORD_MAX = 128


@dataclass(frozen=True)
class Caller:
    """Who dialed, for a dialplan app: the phone's authenticated directory user, if any."""

    phone: Optional[Phone] = None
    channel: Optional[SessionChannel] = None


API = None  # the caller of an API command: fs_cli / ESL, trusted like the switch's console


@dataclass(frozen=True)
class Command:
    usage: str
    min_args: int
    max_args: int
    run: Callable[[List[str], Optional[Caller]], str]


def _usage(cmd: Command) -> CtiError:
    return CtiError("usage", cmd.usage)


def _caller_seat(seats: Seats, caller: Optional[Caller]) -> Optional[str]:
    if caller is None or caller.phone is None:
        return None
    return seats.seat_on_phone(caller.phone)


def _target_and_operator(seats: Seats, seat: str, operator: str, caller: Optional[Caller]) -> Tuple[str, str]:
    """From a phone, the seat defaults to the caller's own, and the caller is the operator."""
    mine = None if caller is None else _caller_seat(seats, caller)
    if seat in ("", "-"):
        if mine is None:
            raise CtiError("not_signed_in", "no seat given and no seat is signed in on the calling phone")
        seat = mine
    check_id("seat", seat)
    if operator:
        check_id("operator", operator)
    elif caller is not None and caller.phone is not None and seat != mine:
        if mine is None:
            raise CtiError("not_signed_in", f"phone {caller.phone.number} has no signed-in seat to act on {seat}")
        operator = mine
    return seat, operator


PIN_TIMEOUT_MS = 10_000


def _checkin(a: List[str], caller: Optional[Caller]) -> str:
    hotline, seat, password = a[0], a[1], _at(a, 2)
    if hotline not in ("-", "*"):
        for one in hotline.split(","):  # one hotline, or a list: 8001,8002
            check_id("hotline", one)
    check_id("seat", seat)
    if caller is not None:
        # From the dialplan the password is keyed after a tone, never an argument: the app's
        # data is in every CHANNEL_EXECUTE event, the feature code in CDRs and `show channels`.
        if password not in ("", "-"):
            raise CtiError("usage", f"{APP_CHECKIN_USAGE}: from the dialplan the password is keyed after the tone, never given")
        if caller.channel is None:
            raise CtiError("no_phone", "no channel to ask the password on")
        tone = wiring.seats().config.tones.password
        password = caller.channel.ask_digits(tone, PASSWORD_MAX, PIN_TIMEOUT_MS)
        if not password:
            raise CtiError("bad_password", f"no password keyed for seat {seat}")
    if len(password) > PASSWORD_MAX:
        raise CtiError("too_long", f"password longer than {PASSWORD_MAX}")
    if len(a) >= 4:
        kind = a[4] if len(a) >= 5 else "internal"
        phone = Phone.parse(dial.typed_phone(a[3], kind), kind, wiring.default_domain())
        conf = wiring.seats().config.seats.get(seat)
        if conf is not None and conf.domain and phone.type == "internal" and "@" not in a[3]:
            phone = Phone.extension(phone.number, conf.domain, wiring.default_domain())  # bare: the seat's domain
    elif caller is not None and caller.phone is not None:
        phone = caller.phone
    else:
        raise CtiError("no_phone", "no phone given and the calling channel has no authenticated user")
    return wiring.seats().checkin(hotline, seat, password, phone, a[5] if len(a) >= 6 else "agent")


def _checkout(a: List[str], caller: Optional[Caller]) -> str:
    seats = wiring.seats()
    seat, operator = _target_and_operator(seats, _at(a, 0), _at(a, 1), caller)
    return seats.checkout(seat, operator)


def _busy(a: List[str], caller: Optional[Caller]) -> str:
    reason = check_reason(_at(a, 1))
    seats = wiring.seats()
    seat, operator = _target_and_operator(seats, _at(a, 0), _at(a, 2), caller)
    return seats.set_status("busy", seat, reason, operator)


def _idle(a: List[str], caller: Optional[Caller]) -> str:
    seats = wiring.seats()
    seat, operator = _target_and_operator(seats, _at(a, 0), _at(a, 1), caller)
    return seats.set_status("idle", seat, "", operator)


def _status(a: List[str], caller: Optional[Caller]) -> str:
    as_json = bool(a) and a[-1] == "json"
    rest = a[:-1] if as_json else a
    if len(rest) > 1:
        raise _usage(COMMANDS["status"])
    target = rest[0] if rest else ""
    if target:
        check_id("seat or hotline", target)
    sup = wiring.supervisors()
    here = ("", sup.seats.node)  # another switch's sessions are that switch's to check
    live = [s for s in sup.sessions() if s.state == "ringing" or s.node not in here or sup.calls.exists(s.leg)]
    waiting = wiring.queues().waiting(target) if target in sup.seats.config.hotlines else []
    return sup.seats.status(target, as_json, live, waiting, wiring.config_problem())


def _stats(a: List[str], caller: Optional[Caller]) -> str:
    as_json = bool(a) and a[-1] == "json"
    rest = a[:-1] if as_json else a
    if record_stats.is_past_form(rest) and len(rest) <= 3:
        return _stats_past(rest, as_json)
    if len(rest) > 1:
        raise _usage(COMMANDS["stats"])
    target = check_id("hotline or seat", rest[0]) if rest else ""
    wiring.Switch.here().settle()  # the counts of events the writer has still to fire
    return stats_report.report(wiring.stats(), wiring.seats().config, target, as_json)


def _stats_past(rest: List[str], as_json: bool) -> str:
    """``cti.stats <hotline>|<seat> <from> [<to>] [json]``: from the call records."""
    target = check_id("hotline or seat", rest[0])
    cfg = wiring.seats().config
    if target not in cfg.hotlines and target not in cfg.seats:
        raise CtiError("no_such_seat", f"no seat or hotline {target!r} in {cfg.path}")
    field = record_stats.target_field(target, cfg.hotlines)
    query = record_stats.query(field, target, rest[1], _at(rest, 2), wiring.clock())
    rows = wiring.records_reader().totals(query)
    if target in cfg.hotlines:
        conf = cfg.hotlines[target]
        seats = [(s, c.name) for s, c in cfg.seats.items() if target in c.hotlines]
        return record_stats.report(rows, query, (target, conf.name, conf.service_level), seats, as_json)
    return record_stats.report(rows, query, None, [(target, cfg.seats[target].name)], as_json)


def _records(a: List[str], caller: Optional[Caller]) -> str:
    cfg = wiring.seats().config
    query = record_search.parse(a, cfg.hotlines, cfg.seats, wiring.clock())
    return record_search.answer(query, wiring.records_reader())


def _supervise(action: str) -> Callable[[List[str], Optional[Caller]], str]:
    def run(a: List[str], caller: Optional[Caller]) -> str:
        seat = check_id("seat", a[0])
        sup = wiring.supervisors()
        if len(a) > 1:
            supervisor = check_id("supervisor", a[1])
        elif caller is not None and caller.phone is not None:
            mine = sup.seats.seat_on_phone(caller.phone)
            if mine is None:
                raise CtiError("not_signed_in", f"phone {caller.phone.number} has no signed-in seat")
            supervisor = mine
        else:
            raise _usage(COMMANDS[action])
        channel = caller.channel if caller is not None and len(a) == 1 else None
        return sup.supervise(action, seat, supervisor, channel)

    return run


def _ring(a: List[str], caller: Optional[Caller]) -> str:
    number = check_id("ring group", a[0])
    groups = wiring.ring_groups()
    if caller is None or caller.channel is None:
        group, legs, skipped = groups.group(number)  # the dial string it would ring now
        return f"+OK {dial.group(group, legs)}" + (f" (skipped {' '.join(skipped)})" if skipped else "")
    return groups.ring(number, caller.channel)


def _route(a: List[str], caller: Optional[Caller]) -> str:
    hotline = check_id("hotline", a[0])
    router = wiring.router(wiring.seats())
    conf = router.hotline(hotline)
    if caller is None or caller.channel is None:
        ranked = router.ranked(conf)
        waiting = len(router.queues.waiting(hotline))
        nxt = ranked[0] if ranked else "nobody (the caller would queue)"
        return f"+OK {hotline} would offer {nxt} ({conf.strategy}; idle: {','.join(ranked) or '-'}; waiting: {waiting})"
    return router.route(hotline, caller.channel)


def _stopcall(a: List[str], caller: Optional[Caller]) -> str:
    rest = a[1:]
    cause = rest.pop() if rest and rest[-1] in CAUSES else "MANAGER_REQUEST"
    if len(rest) > 1 or (rest and not rest[0].isdigit() and rest[0].upper() == rest[0] and "_" in rest[0]):
        raise CtiError("bad_arg", f"hangup cause {(rest[-1])[:30]!r} is not one of {', '.join(sorted(CAUSES))}")
    sup = wiring.supervisors()
    seat, operator = _target_and_operator(sup.seats, a[0], rest[0] if rest else "", caller)
    return sup.stopcall(seat, operator, cause)


def _help(a: List[str], caller: Optional[Caller]) -> str:
    """``cti.help <seat> [cancel]``; from a phone ``cti.help [-|<seat>] [cancel]`` (its own seat)."""
    cancel = bool(a) and a[-1] == "cancel" and (len(a) == 2 or caller is not None)
    rest = a[:-1] if cancel else a
    if len(rest) > 1 or (caller is None and not rest):
        raise _usage(COMMANDS["help"])
    helps = wiring.help_requests()
    seat, operator = _target_and_operator(helps.seats, _at(rest, 0), "", caller)
    return helps.cancel(seat, operator) if cancel else helps.ask(seat, operator)


def _unlock(a: List[str], caller: Optional[Caller]) -> str:
    seats = wiring.seats()
    seat = check_id("seat", a[0])
    if len(a) > 1:
        operator = check_id("operator", a[1])
    elif caller is not None:  # from a phone: its signed-in supervisor seat
        operator = _caller_seat(seats, caller) or ""
        if not operator:
            raise CtiError("not_signed_in", "the calling phone has no signed-in supervisor seat")
    else:
        operator = ""  # fs_cli / ESL: the switch's console
    return seats.signin.unlock(seat, operator)


def _call(a: List[str], caller: Optional[Caller]) -> str:
    """``cti.call <seat> <number> [<hotline>|-] [<operator>]``; from a phone the seat may be ``-``."""
    controls = wiring.controls()
    seat, operator = _target_and_operator(controls.seats, a[0], _at(a, 3), caller)
    hotline = _at(a, 2)
    if hotline not in ("", "-"):
        check_id("hotline", hotline)
    return controls.call(seat, a[1], hotline, operator)


def _on_call(verb: str) -> Callable[[List[str], Optional[Caller]], str]:
    """``cti.<verb> <seat> [<operator>]``: hangup, hold, unhold, complete, threeway, cancel."""

    def run(a: List[str], caller: Optional[Caller]) -> str:
        controls = wiring.controls()
        n = len(a)  # ``_at``, spelled out: hold and unhold must cost no more than a status change
        seat, operator = _target_and_operator(controls.seats, a[0] if n else "", a[1] if n > 1 else "", caller)
        act: Callable[[str, str], str] = getattr(controls, verb)
        return act(seat, operator)

    return run


def _with_target(verb: str) -> Callable[[List[str], Optional[Caller]], str]:
    """``cti.<verb> <seat> <target> [<operator>]``: transfer, consult, dtmf, record (pause|resume)."""

    def run(a: List[str], caller: Optional[Caller]) -> str:
        controls = wiring.controls()
        seat, operator = _target_and_operator(controls.seats, a[0], _at(a, 2), caller)
        target = a[1]  # a seat, a hotline, a number, keys: the use case checks which
        act: Callable[[str, str, str], str] = getattr(controls, verb)
        return act(seat, target, operator)

    return run


def _xfer(a: List[str], caller: Optional[Caller]) -> str:
    if caller is None or caller.channel is None:
        raise CtiError("usage", "cti.xfer runs on a transferred caller's leg (cti.transfer sends it there)")
    return wiring.transfers().run(caller.channel)


WEB_STEPS = ("check", "failed", "ok")


def _weblogin(a: List[str], caller: Optional[Caller]) -> str:
    """The web service's sign-in steps, from ESL only: ``check`` (locked?), ``failed`` / ``ok``
    (the password it checked was wrong / right: the lockout counts or clears), ``checkin`` (the
    logged-in seat signs in without its password ever being an API argument)."""
    if caller is not None:
        raise CtiError("usage", "cti.weblogin is the web service's, over ESL only")
    seat, step = check_id("seat", a[0]), a[1]
    seats = wiring.seats()
    if step in WEB_STEPS:
        if len(a) != 3:
            raise _usage(COMMANDS["weblogin"])
        try:
            client = str(ipaddress.ip_address(a[2]))
        except ValueError:
            raise CtiError("bad_arg", f"web client {a[2][:50]!r} is not an IP address") from None
        if step == "check":
            return seats.signin.web_check(seat, client)
        return seats.signin.web_failed(seat, client) if step == "failed" else seats.signin.web_ok(seat, client)
    if step != "checkin" or len(a) < 4:
        raise _usage(COMMANDS["weblogin"])
    hotline = a[2]
    if hotline not in ("-", "*"):
        for one in hotline.split(","):
            check_id("hotline", one)
    kind = _at(a, 4) or "internal"
    phone = Phone.parse(dial.typed_phone(a[3], kind), kind, wiring.default_domain())
    conf = seats.config.seats.get(seat)
    if conf is not None and conf.domain and phone.type == "internal" and "@" not in a[3]:
        phone = Phone.extension(phone.number, conf.domain, wiring.default_domain())
    return seats.checkin(hotline, seat, "", phone, _at(a, 5) or "agent", verified=True)


def _reload(a: List[str], caller: Optional[Caller]) -> str:
    wiring.reload()
    cfg = wiring.seats().config  # read now; a broken file never replaces the last good config
    problem = wiring.config_problem()
    if problem:
        raise CtiError("config", problem)
    return f"+OK reloaded {cfg.path}: {len(cfg.seats)} seats, {len(cfg.hotlines)} hotlines, {len(cfg.ring_groups)} ring groups"


def _at(a: List[str], i: int) -> str:
    return a[i] if len(a) > i else ""


COMMANDS: Dict[str, Command] = {
    "checkin": Command(
        "cti.checkin <hotline>[,<hotline>...]|- <seat> <password> <phone> [internal|external] [agent|supervisor]", 4, 6, _checkin
    ),
    "checkout": Command("cti.checkout <seat> [<operator>]", 1, 2, _checkout),
    "busy": Command("cti.busy <seat> [<reason> [<operator>]]", 1, 3, _busy),
    "idle": Command("cti.idle <seat> [<operator>]", 1, 2, _idle),
    "status": Command("cti.status [<seat>|<hotline>] [json]", 0, 2, _status),
    "stats": Command("cti.stats [<hotline>|<seat>] [json] | cti.stats <hotline>|<seat> <from> [<to>] [json]", 0, 4, _stats),
    "records": Command(
        "cti.records [<from> [<to>]] [<hotline>|<seat>|<caller number>] [outcome=<o>] [limit=<n>] [before=<uuid>] [json]"
        " | cti.records uuid=<uuid> [json]",
        0,
        12,
        _records,
    ),
    "monitor": Command("cti.monitor <seat> <supervisor>", 2, 2, _supervise("monitor")),
    "whisper": Command("cti.whisper <seat> <supervisor>", 2, 2, _supervise("whisper")),
    "barge": Command("cti.barge <seat> <supervisor>", 2, 2, _supervise("barge")),
    "robcall": Command("cti.robcall <seat> <supervisor>", 2, 2, _supervise("robcall")),
    "stopcall": Command("cti.stopcall <seat> [<operator>] [<cause>]", 1, 3, _stopcall),
    "ring": Command("cti.ring <ring group>", 1, 1, _ring),
    "route": Command("cti.route <hotline>", 1, 1, _route),
    "reload": Command("cti.reload", 0, 0, _reload),
    "unlock": Command("cti.unlock <seat> [<supervisor>]", 1, 2, _unlock),
    "help": Command("cti.help <seat> [cancel]", 1, 2, _help),
    "call": Command("cti.call <seat> <number> [<hotline>|-] [<operator>]", 2, 4, _call),
    "hangup": Command("cti.hangup <seat> [<operator>]", 1, 2, _on_call("hangup")),
    "hold": Command("cti.hold <seat> [<operator>]", 1, 2, _on_call("hold")),
    "unhold": Command("cti.unhold <seat> [<operator>]", 1, 2, _on_call("unhold")),
    "transfer": Command("cti.transfer <seat> <target> [<operator>]", 2, 3, _with_target("transfer")),
    "consult": Command("cti.consult <seat> <target> [<operator>]", 2, 3, _with_target("consult")),
    "complete": Command("cti.complete <seat> [<operator>]", 1, 2, _on_call("complete")),
    "threeway": Command("cti.threeway <seat> [<operator>]", 1, 2, _on_call("threeway")),
    "cancel": Command("cti.cancel <seat> [<operator>]", 1, 2, _on_call("cancel")),
    "dtmf": Command("cti.dtmf <seat> <keys> [<operator>]", 2, 3, _with_target("dtmf")),
    "record": Command("cti.record <seat> pause|resume [<operator>]", 2, 3, _with_target("record")),
    "xfer": Command("cti.xfer (the dialplan of a transferred caller)", 0, 0, _xfer),
    "weblogin": Command(
        "cti.weblogin <seat> check|failed|ok <client address> | cti.weblogin <seat> checkin <hotline>[,...]|- <phone>"
        " [internal|external] [agent|supervisor]",
        2,
        6,
        _weblogin,
    ),
}
# From a phone the phone (checkin), the seat (the others) or the supervisor (the caller) may
# be left out.
APP_CHECKIN_USAGE = "cti.checkin <hotline> <seat> [- [<phone> [internal|external] [agent|supervisor]]]"
APP_MIN_ARGS = {
    "help": 0,
    "checkin": 2,
    "checkout": 0,
    "busy": 0,
    "idle": 0,
    "monitor": 1,
    "whisper": 1,
    "barge": 1,
    "robcall": 1,
    "hangup": 0,
    "hold": 0,
    "unhold": 0,
    "complete": 0,
    "threeway": 0,
    "cancel": 0,
}


def execute(name: str, args: str, caller: Optional[Caller]) -> str:
    try:
        cmd = COMMANDS[name]
        argv = args.split()
        low = APP_MIN_ARGS.get(name, cmd.min_args) if caller is not None else cmd.min_args
        if not low <= len(argv) <= cmd.max_args:
            raise _usage(cmd)
        return cmd.run(argv, caller)
    except CtiError as exc:  # a new one per raise; it and its frames go when this returns
        return exc.reply()
    except Exception as exc:  # never let mod_python3 answer "-ERR no reply"
        return _internal(name, args, exc)
    finally:
        wiring.after_command()


def api(name: str, stream: Any, args: str) -> None:
    reply = execute(name, args if isinstance(args, str) else "", API)
    stream.write(reply + "\n")


# from the dialplan, these run for the caller's whole call (it is a call of the phone); the
# others are commands, which the phone's seat does not take for a call of its own
CALLS = frozenset({"route", "ring", "xfer"})


def dialplan(name: str, session: Any, args: str) -> None:
    """A dialplan application. It never raises and keeps nothing of the call: whatever
    happened, the channel gets ``cti_result``/``cti_ok``/``cti_code``/``cti_tone`` and the
    dialplan's next action runs; mod_python3 then releases the session (an error or frame kept
    past the call would keep the session locked, ``CS_EXECUTE`` for ever)."""
    try:
        reply = _dialplan(name, session, args if isinstance(args, str) else "")
    except Exception as exc:  # the session's own calls failed (execute answers every other error)
        reply = _internal(name, args, exc)
    ok = reply.startswith("+OK") or not reply.startswith("-ERR")
    try:
        tones = wiring.seats().config.tones
        tone = tones.ok if ok else tones.error
    except Exception:
        tone = "tone_stream://%(500,500,480,620);loops=2"
    try:
        session.setVariable("cti_result", reply.split("\n", 1)[0])
        session.setVariable("cti_ok", "true" if ok else "false")
        session.setVariable("cti_code", "OK" if ok else reply.split(" ", 2)[1])
        session.setVariable("cti_tone", tone)
        wiring.Switch.here().log("INFO" if ok else "NOTICE", f"cti.{name}: {reply.splitlines()[0] if reply else ''}")
    except Exception as exc:
        _internal(name, args, exc)


def _dialplan(name: str, session: Any, args: str) -> str:
    caller = Caller(_session_phone(session), SessionChannel(session))
    leg = caller.channel.uuid if caller.channel is not None else ""
    command = name not in CALLS and bool(leg)
    commands = wiring.command_legs()
    if command:
        commands.add(leg)
    try:
        if command and caller.phone is not None:
            try:
                wiring.seats().detach(caller.phone, leg)
            except Exception:  # a broken config or store: the command says so itself
                pass
        return execute(name, args, caller)
    finally:
        commands.discard(leg)


def _internal(name: str, args: Any, exc: BaseException) -> str:
    """Log an unexpected error in one line (never its traceback object) and answer it."""
    try:
        wiring.Switch.here().log("ERR", f"cti.{name} {str(args)[:200]!r}: {brief(exc)}")
    except Exception:
        pass
    return f"-ERR internal {type(exc).__name__}: {str(exc)[:120]}".replace("\n", " ")


def _session_phone(session: Any) -> Optional[Phone]:
    """The authenticated directory user (``user_name`` of ``domain_name``), not the spoofable
    caller-id number."""
    try:
        user = session.getVariable("user_name") or ""
        domain = session.getVariable("domain_name") or ""
    except Exception:
        return None
    if not user:
        return None
    try:
        return Phone.parse(f"{user}@{domain}" if domain else user, "internal", wiring.default_domain())
    except CtiError:
        return None


class _Watcher:
    """``cti.watcher``: the call watcher's thread body and its fs_cli controls."""

    run = staticmethod(events.run)

    @staticmethod
    def command(args: str) -> str:
        word = (args or "").strip()
        if word == "stop":
            if events.stop():
                return "+OK stopping the call watcher\n"
            return "+OK call watcher not running\n"
        if word in ("", "status"):
            if wiring.watcher_alive():
                return "+OK call watcher running\n"
            return "+OK call watcher not running: supervisor commands scan the channels (start it: pyrun cti.watcher)\n"
        return "-ERR usage cti.watcher [status|stop]\n"


watcher = _Watcher()
