"""The writer: what the switch does for a command after the command has answered.

A status change costs a no-op ``python`` call (mod_python3's own ~0.6 ms) plus cti's work, and
most of cti's work is two calls into the switch that nobody waits for: the ``hash insert`` of
the seat's record (cti reads its records from its own write-through cache, never back from
mod_hash) and firing the ``cti::`` event. While the call watcher runs, both are handed to one
Python thread, in order, and the command answers as soon as the change is in the cache that
every cti command reads. The thread (started and stopped by the watcher: a Python thread
started inside mod_python3 runs on after the call that started it) does them in the order they
were made, so events keep their commit order: within ``POLL`` (10 ms) while the floor is busy,
else a millisecond after the command rang it (``POLL`` says why). Without the
watcher, or once the thread is gone, they are done at once, as before.

Only what no later command can depend on reading back from the switch is handed over: the
``hash`` store's seat records (``db`` is written at once: it must survive a crash), events,
and API commands whose reply nobody reads (``Switch.later``: a supervisor's background
originate, whose job cti names itself, and stopcall's variables and kills). Claims, releases
and every other key stay synchronous.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Optional, Tuple

from cti.domain.errors import brief

Job = Tuple[Callable[..., Any], Tuple[Any, ...]]
LAG = 0.001  # seconds the writer lets a command finish before it writes what the command handed over
# While jobs keep coming, the writer looks at its queue every POLL seconds and nobody rings it:
# a command that wakes a sleeping thread pays for the wake when it ends (the woken thread takes
# the GIL as the command lets it go), about 0.05 ms on the live switch, a third of what cti adds
# to mod_python3's own cost of a status change. After POLL_FOR seconds without a job it waits
# for the bell again (a quiet switch costs nothing), and the next command rings it. Polling
# costs the switch ~0.8% of one core on the 2-core test machine (3.9% against 3.1% at rest).
POLL = 0.01
POLL_FOR = 60.0


class Writer:
    def __init__(self, log: Callable[[str, str], None]) -> None:
        self._log = log
        self._jobs: Deque[Job] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._thread: Optional[threading.Thread] = None
        self._stopping = False
        self._busy = False
        # set before the thread starts, cleared as its body ends: ``running`` is asked twice or
        # more per status change, and Thread.is_alive takes and drops a lock each time
        self._alive = False
        self._waiting = False  # the thread waits for a job: the next hand-over rings the bell
        # the bell the thread waits on for a job: a plain lock, held while nobody rang. Ringing
        # it is one C call on the command's thread (a Condition's notify is a page of Python
        # that the command would run cold, every command)
        self._bell = threading.Lock()
        self._bell.acquire()
        self.ident = -1  # threading.get_ident() of the thread while it runs

    def running(self) -> bool:
        return self._alive and not self._stopping

    def start(self) -> None:
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                self._stopping = False
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="cti-writer", daemon=True)
            self._alive = True
            try:
                self._thread.start()
            except BaseException:
                self._alive = False
                raise

    def pending(self) -> bool:
        return bool(self._jobs) or self._busy

    def is_writer(self) -> bool:
        return threading.get_ident() == self.ident

    def submit(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Hand ``fn(*args)`` to the writer; False when it does not run (do it now). On every
        command's path, cold: ``running`` is spelled out, and the bell rung here."""
        if not self._alive or self._stopping:
            return False
        self._jobs.append((fn, args))  # a deque's append is atomic: the jobs keep their order
        if self._waiting:  # else it is busy or asleep before its next job: it will look
            self._waiting = False
            try:
                self._bell.release()
            except RuntimeError:  # rung already (two hand-overs at once): once is enough
                pass
        return True

    def _ring(self) -> None:
        try:
            self._bell.release()
        except RuntimeError:  # rung already (two hand-overs at once): once is enough
            pass

    def drain(self, timeout: float = 2.0) -> bool:
        """Wait until every job handed over so far is done (an upgrade, a stop)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._jobs or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None or not self._thread.is_alive():
                    break
                self._cond.wait(min(left, 0.05))
            done = not self._jobs and not self._busy
            gone = self._thread is None or not self._thread.is_alive()
        if not done and gone:  # the thread died: do the rest here, in order
            while self._jobs:
                self._do(self._jobs.popleft())
            return True
        return done

    def stop(self) -> None:
        """Do what is left, then end the thread."""
        self.drain()
        with self._cond:
            self._stopping = True
        self._ring()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(2.0)

    def _do(self, job: Job) -> None:
        fn, args = job
        try:
            fn(*args)
        except Exception as exc:  # one line; the error (and the job's frames) go with this call
            self._log("ERR", f"cti: writer: {getattr(fn, '__qualname__', fn)}: {brief(exc)}")

    def _run(self) -> None:
        self.ident = threading.get_ident()
        try:
            self._loop()
        finally:
            with self._cond:
                if self._thread is threading.current_thread():
                    self._alive = False
            if self.ident == threading.get_ident():
                self.ident = -1

    def _loop(self) -> None:
        last_job = time.monotonic()
        while True:
            idle = not self._jobs
            if idle and not self._stopping and time.monotonic() - last_job < POLL_FOR:
                time.sleep(POLL)  # the floor is busy: look again soon, and no command rings
                continue
            if idle:
                self._waiting = True
                # looked at again with the flag up: a job handed over before it was up rang no bell
                if not self._jobs and not self._stopping:
                    self._bell.acquire(timeout=1.0)  # a bell rung after a timeout wakes the next wait: it looks again
                self._waiting = False
                if not self._jobs:
                    if self._stopping:  # and nothing left
                        return
                    continue
                # let the command that handed this over finish first: its thread needs the GIL
                # once more after it answered, and a switch API call holds the GIL throughout
                time.sleep(LAG)
            with self._cond:
                self._busy = True  # first: ``pending`` (no lock) never sees neither the job nor the work
                job = self._jobs.popleft()
            try:
                self._do(job)
            finally:
                with self._cond:
                    self._busy = False
                    if not self._jobs:
                        self._cond.notify_all()
                last_job = time.monotonic()
