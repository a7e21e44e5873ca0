"""Sign-in security: a seat's password checked, a wrong one counted in the lockout (per seat,
and per phone or web browser: lockout.py), logged and announced, and a lock cleared by
``cti.unlock``.

The web service checks the password itself (PBKDF2 against the same hash, on its own host) so
that no password ever is an API argument (``cti.weblogin``, over ESL only); the lockout stays
the switch's: it asks before, and reports the outcome after, keyed by the seat and the
browser's address.
"""

from __future__ import annotations

from typing import Callable

from cti.config import Config, SeatConf
from cti.domain.errors import CtiError
from cti.domain.events import SignInEvent
from cti.domain.lockout import Lockout
from cti.domain.model import Phone
from cti.domain.policy import Policy
from cti.domain.ports import Events, Log


def web_key(client: str) -> str:
    """The lockout's key of a web browser's address (as a phone's is ``i.<ext>``)."""
    return f"w.{client}"


class SignIn:
    def __init__(
        self,
        config: Config,
        lockout: Lockout,
        policy: Policy,
        events: Events,
        log: Log,
        clock: Callable[[], float],
        dial: Callable[[Phone], str],
    ) -> None:
        self._config, self._lockout, self._policy = config, lockout, policy
        self._events, self._log, self._clock, self._dial = events, log, clock, dial

    def password(self, conf: SeatConf, password: str, phone: Phone) -> None:
        """The seat's password, or a refusal: while the seat or phone is locked at once (no
        PBKDF2); a wrong one is counted, logged and announced, and may lock both."""
        self._lockout.check(conf.id, phone.key)
        if self._lockout.verify(conf.password, password):
            self._lockout.succeeded(conf.id, phone.key)
            return
        raise self._wrong(conf, phone.key, f"phone {phone.number}", self._dial(phone))

    def _wrong(self, conf: SeatConf, key: str, where: str, source: str) -> CtiError:
        """A wrong password for ``conf`` from ``where`` (a phone, a web client): counted for both,
        logged and announced; the refusal to raise (``locked`` said in it when it locked now)."""
        locked = self._lockout.failed(conf.id, key)
        lock = self._config.lockout
        what = {"s": f"seat {conf.id}", "p": where}
        note = "; " + " and ".join(what[k] for k in locked) + f" locked for {lock.duration}s" if locked else ""
        self._log.log("WARNING", f"cti: wrong password for seat {conf.id} from {where}{note}")
        self._fire("bad_password", conf.id, source, note[2:])
        for kind in locked:
            self._fire("locked", conf.id, source, f"{what[kind]} after {lock.max_failures} wrong passwords")
        return CtiError("bad_password", f"wrong password for seat {conf.id}{note}")

    def web_check(self, seat: str, client: str) -> str:
        self._policy.seat_conf(seat)
        self._lockout.check(seat, web_key(client))
        return f"+OK {seat} may sign in from {client}"

    def web_failed(self, seat: str, client: str) -> str:
        conf = self._policy.seat_conf(seat)
        self._lockout.check(seat, web_key(client))
        return self._wrong(conf, web_key(client), f"web client {client}", f"web/{client}").reply()

    def web_ok(self, seat: str, client: str) -> str:
        self._policy.seat_conf(seat)
        self._lockout.check(seat, web_key(client))  # locked meanwhile (by a phone): still locked
        self._lockout.succeeded(seat, web_key(client))
        self._log.log("INFO", f"cti: seat {seat} logged in on the web from {client}")
        return f"+OK {seat} logged in from {client}"

    def _fire(self, action: str, seat: str, source: str, reason: str, operator: str = "") -> None:
        self._events.fire(SignInEvent(action, seat, source, operator, reason, self._clock()))

    def unlock(self, seat: str, operator: str = "") -> str:
        """``cti.unlock``: from fs_cli, or by a signed-in supervisor over the seat."""
        self._policy.unlock(seat, operator)
        until = self._lockout.unlock(seat)
        self._fire("unlocked", seat, "", "was locked" if until else "was not locked", operator)
        self._log.log("NOTICE", f"cti: seat {seat} unlocked by {operator or 'the console'}")
        return f"+OK {seat} unlocked" + ("" if until else " (it was not locked)")
