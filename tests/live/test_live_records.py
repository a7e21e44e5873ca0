"""Call records on a real FreeSWITCH (issue 24): a hotline call written by the switch's own
mod_cdr_sqlite into ``<db_dir>/cti_records.db`` (installed by scripts/install.sh) and found by
``cti.records`` — its wait and talk agreeing with the call's own events within a second — and
counted by ``cti.stats`` for the day from the records."""

from __future__ import annotations

import json
import time
from typing import Dict, Optional


def _record(live, uuid: str) -> Optional[Dict[str, object]]:
    reply = live.cti("records", f"uuid={uuid} json")
    assert reply.startswith("{"), reply
    rows = json.loads(reply)["records"]
    return rows[0] if rows else None


def test_a_hotline_call_is_on_the_record_with_its_wait_and_talk(live):
    live.sign_in_all("8001 101 p101 101")
    live.phone("101", "noanswer")  # it rings until picked up here
    mark = live.esl.mark()
    cid = f"1390{int(time.time() * 10) % 10**7:07d}"  # a number no earlier call had
    caller = live.customer("route-8001", cid=cid)
    leg = live.wait_leg("101")
    time.sleep(1.5)
    live.pick_up(leg)
    live.wait(lambda: live.partner(leg) == caller["b"], 3.0, "bridged to 101")
    answered = live.esl.wait_event(
        lambda e: e.get("CTI-Action") == "answered" and e.get("Event-Subclass") == "cti::queue", 2.0, mark
    )
    time.sleep(2.0)  # they talk
    live.hang_up(caller["a"])  # the customer hangs up
    hangup = live.esl.wait_event(
        lambda e: e.get("Event-Subclass") == "cti::seat" and e.get("CTI-Seat") == "101" and e.get("CTI-Action") == "hangup",
        3.0,
        mark,
    )
    rec = live.wait(lambda: _record(live, caller["b"]), 3.0, "the call's record written by mod_cdr_sqlite")
    assert isinstance(rec, dict)
    assert (rec["direction"], rec["hotline"], rec["caller_number"], rec["seats"]) == ("inbound", "8001", cid, "101")
    assert (rec["outcome"], rec["hangup_by"], rec["cause"]) == ("answered", "caller", "NORMAL_CLEARING")
    assert abs(float(rec["waited"]) - float(answered["CTI-Waited"])) <= 1.0, (rec["waited"], answered["CTI-Waited"])
    assert abs(float(rec["talk"]) - float(hangup["CTI-Talk-Seconds"])) <= 1.0, (rec["talk"], hangup["CTI-Talk-Seconds"])
    assert float(rec["waited"]) >= 1.0 and float(rec["talk"]) >= 1.5
    print(
        f"record waited {rec['waited']:.3f} s (event {answered['CTI-Waited']}), talk {rec['talk']:.3f} s (event {hangup['CTI-Talk-Seconds']})"
    )
    assert abs(float(rec["ended"]) - time.time()) < 30
    # found by each search form, newest first
    for words in ("json", "8001 json", "101 json", f"{cid} json", f"{cid} outcome=answered json"):
        reply = json.loads(live.cti("records", words))
        assert reply["records"] and reply["records"][0]["uuid"] == caller["b"], words
    assert json.loads(live.cti("records", "' OR 1=1 -- json")) == {"records": [], "next": ""}
    text = live.cti("records", cid)
    assert caller["b"] in text and text.splitlines()[-1].startswith("1 record ended ")
    today = time.strftime("%Y-%m-%d", time.localtime(float(rec["ended"])))
    stats = json.loads(live.cti("stats", f"8001 {today} json"))
    assert stats["hotlines"][0]["total"]["answered"] >= 1
    assert live.cti("records", "2026-13-01").startswith("-ERR bad_date ")
