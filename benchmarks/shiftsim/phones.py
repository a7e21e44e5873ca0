"""The seats' phones: one SIPp user agent (Debian's sip-tester) plays every seat's phone.

A call to a phone (the switch's INVITE to ``<ext>@127.0.0.1:<port>``) is answered after a random
1-5 s, rings out (the switch cancels it), or is refused 486 Busy Here, by a random draw per call
(SIPp's ``sample``/``test`` actions). An answered call lasts until the switch's BYE: the caller's
talk time, a supervisor's take-over or force hang-up end it. Each step writes one line to the
phone's own log (``-trace_logs``), so what a phone went through is read from the phone, not from
cti: ``<ms since start> <what> <Call-ID> <To:>``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

_HEAD = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="{name}">\n'


def _sdp() -> str:
    return (
        "v=0\n"
        "o=sipp 1 1 IN IP[local_ip_type] [local_ip]\n"
        "s=-\n"
        "c=IN IP[media_ip_type] [media_ip]\n"
        "t=0 0\n"
        "m=audio [media_port] RTP/AVP 0 101\n"
        "a=rtpmap:0 PCMU/8000\n"
        "a=rtpmap:101 telephone-event/8000\n"
    )


def _reply(status: str, sdp: str = "", cseq: str = "[last_CSeq:]") -> str:
    body = "Content-Type: application/sdp\nContent-Length: [len]\n" if sdp else "Content-Length: 0\n"
    return f"""  <send><![CDATA[
SIP/2.0 {status}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
{cseq}
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
{body}
{sdp}
  ]]></send>
"""


def _log(what: str) -> str:
    return f'    <log message="[clock_tick] {what} [call_id] [$to]"/>\n'


def scenario(busy: float = 0.05, ring_out: float = 0.10, answer_s: Tuple[int, int] = (1, 5)) -> str:
    """The phone: per call, 486 with probability ``busy``, ringing until cancelled with
    ``ring_out``, else answered after a whole number of seconds drawn from ``answer_s``."""
    lo, hi = answer_s
    delays = list(range(lo, hi + 1))
    out = [_HEAD.format(name="cti shift: a seat's phone")]
    out.append(
        '  <recv request="INVITE">\n    <action>\n'
        '      <ereg regexp="[^ ].*" search_in="hdr" header="To:" assign_to="to"/>\n'
        '      <ereg regexp="[0-9]+ INVITE" search_in="hdr" header="CSeq:" assign_to="cseq"/>\n'
        '      <sample assign_to="r" distribution="uniform" min="0" max="1"/>\n'
        f'      <test assign_to="busy" variable="r" compare="less_than" value="{busy}"/>\n'
        f'      <test assign_to="out" variable="r" compare="less_than" value="{busy + ring_out}"/>\n'
    )
    if len(delays) > 1:
        out.append('      <sample assign_to="d" distribution="uniform" min="0" max="1"/>\n')
    for i in range(1, len(delays)):
        out.append(f'      <test assign_to="d{i}" variable="d" compare="less_than" value="{i / len(delays):.4f}"/>\n')
    out.append(_log("INVITE") + "    </action>\n  </recv>\n")
    out.append(_reply("100 Trying"))
    out.append('  <nop next="busy" test="busy"/>\n')
    out.append(_reply("180 Ringing"))
    out.append('  <nop next="ringout" test="out"/>\n')
    for i in range(1, len(delays)):
        out.append(f'  <nop next="wait{i}" test="d{i}"/>\n')
    out.append(f'  <nop next="wait{len(delays)}"/>\n')
    for i, seconds in enumerate(delays, 1):
        out.append(f'  <label id="wait{i}"/>\n')
        out.append(
            f'  <recv request="CANCEL" timeout="{seconds * 1000}" ontimeout="answer" next="cancelled">\n'
            "    <action>\n" + _log("CANCELLED") + "    </action>\n  </recv>\n"
        )
    out.append(
        '  <label id="ringout"/>\n  <recv request="CANCEL" timeout="600000" next="cancelled">\n'
        "    <action>\n" + _log("CANCELLED") + "    </action>\n  </recv>\n"
    )
    # cancelled: 200 to the CANCEL, 487 to the INVITE, its ACK
    out.append('  <label id="cancelled"/>\n')
    out.append(_reply("200 OK"))
    out.append(_reply("487 Request Terminated", cseq="CSeq: [$cseq]"))
    out.append('  <recv request="ACK"/>\n')
    out.append('  <nop next="end"/>\n')
    out.append('  <label id="busy"/>\n')
    out.append(_reply("486 Busy Here", cseq="CSeq: [$cseq]"))
    out.append('  <recv request="ACK">\n    <action>\n' + _log("BUSY") + "    </action>\n  </recv>\n")
    out.append('  <nop next="end"/>\n')
    out.append(_answered())
    out.append('  <label id="end"/>\n</scenario>\n')
    return "".join(out)


def _answered() -> str:
    """Answer, then serve the call until the switch's BYE (re-INVITEs and INFOs answered)."""
    return (
        '  <label id="answer"/>\n'
        + _reply("200 OK", _sdp(), cseq="CSeq: [$cseq]")
        + '  <recv request="ACK">\n    <action>\n'
        + _log("ANSWERED")
        + "    </action>\n  </recv>\n"
        '  <label id="serve"/>\n'
        '  <recv request="INVITE" optional="true" next="reinvite"/>\n'
        '  <recv request="INFO" optional="true" next="info"/>\n'
        '  <recv request="NOTIFY" optional="true" next="info"/>\n'
        '  <recv request="BYE" timeout="7200000">\n    <action>\n'
        + _log("BYE")
        + "    </action>\n  </recv>\n"
        + _reply("200 OK")
        + '  <nop next="end"/>\n'
        '  <label id="reinvite"/>\n' + _reply("200 OK", _sdp()) + '  <recv request="ACK"/>\n  <nop next="serve"/>\n'
        '  <label id="info"/>\n' + _reply("200 OK") + '  <nop next="serve"/>\n'
    )


@dataclass
class PhoneCall:
    """One call as the phone saw it: ext, when it came (s since the phone started), how it ended."""

    call_id: str
    ext: str
    invite: float
    answered: Optional[float] = None
    end: Optional[float] = None
    how: str = ""  # ANSWERED+BYE -> "bye", "cancelled", "busy"; "" while going on


_LINE = re.compile(r"^(\d+) (INVITE|ANSWERED|CANCELLED|BUSY|BYE) (\S+) .*?sip:([^@>;]+)@")


def read_log(path: Path) -> Dict[str, PhoneCall]:
    """The calls in a phone's log, by Call-ID."""
    calls: Dict[str, PhoneCall] = {}
    if not path.exists():
        return calls
    for line in path.read_text(errors="replace").splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        t, what, cid, ext = int(m.group(1)) / 1000.0, m.group(2), m.group(3), m.group(4)
        if what == "INVITE":
            calls[cid] = PhoneCall(cid, ext, t)
            continue
        call = calls.get(cid)
        if call is None:
            continue
        if what == "ANSWERED":
            call.answered = t
        else:
            call.end, call.how = t, {"BYE": "bye", "CANCELLED": "cancelled", "BUSY": "busy"}[what]
    return calls


def overlaps(calls: Dict[str, PhoneCall], now: float) -> List[Tuple[str, PhoneCall, PhoneCall]]:
    """Pairs of calls one phone had at once (an offer or a call while another one went on)."""
    by_ext: Dict[str, List[PhoneCall]] = {}
    for c in calls.values():
        by_ext.setdefault(c.ext, []).append(c)
    found = []
    for ext, mine in by_ext.items():
        mine.sort(key=lambda c: c.invite)
        for a, b in zip(mine, mine[1:]):
            a_end = a.end if a.end is not None else now
            if b.invite < a_end:
                found.append((ext, a, b))
    return found


class Phones:
    """A SIPp process playing phones on 127.0.0.1:``port``; its log under ``folder``."""

    def __init__(self, folder: Path, port: int, name: str, text: str) -> None:
        self.folder, self.port, self.name = folder, port, name
        self.scenario = folder / f"{name}.xml"
        self.scenario.write_text(text)
        self.log = folder / f"{name}.log"
        self.proc: Optional[subprocess.Popen] = None
        self.started = 0.0  # wall clock at the phone's start: its log counts milliseconds from it

    def start(self) -> Phones:
        sipp = shutil.which("sipp")
        if sipp is None:
            raise RuntimeError("no sipp here: apt-get install sip-tester")
        self.started = time.time()
        self.proc = subprocess.Popen(
            [sipp, "-sf", str(self.scenario), "-i", "127.0.0.1", "-p", str(self.port), "-nostdin", "-nd", *self._logs()],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.folder,
        )
        time.sleep(0.3)
        if self.proc.poll() is not None:
            raise RuntimeError(f"sipp ({self.name}) exited at once: see {self.folder}")
        return self

    def _logs(self) -> List[str]:
        return ["-trace_logs", "-log_file", str(self.log), "-trace_err", "-error_file", str(self.folder / f"{self.name}.err")]

    def calls(self) -> Dict[str, PhoneCall]:
        return read_log(self.log)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
