"""The SIPp scenarios of the live layer (tests/live/sipp23.py) are well-formed and say what
they do: sipp itself refuses a scenario with a dangling label or an unused variable, found only
when the live switch calls it."""

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "live"))
import sipp23


def steps(xml: str):
    return list(ET.fromstring(xml))


def sent(xml: str):
    return [s.text.strip().split("\n", 1)[0] for s in steps(xml) if s.tag == "send"]


def check_plumbing(xml: str) -> None:
    labels = {s.get("id") for s in steps(xml) if s.tag == "label"}
    jumps = {s.get("next") for s in steps(xml) if s.get("next")}
    assert jumps <= labels, jumps - labels
    assigned = {v for names in re.findall(r'assign_to="([\w,]+)"', xml) for v in names.split(",")}
    used = set(re.findall(r"\[\$(\w+)\]", xml))
    assert assigned == used, (assigned, used)


def test_an_answering_phone_answers_reinvites_and_the_bye():
    xml = sipp23.answering_phone()
    check_plumbing(xml)
    assert sent(xml) == ["SIP/2.0 100 Trying", "SIP/2.0 200 OK", "SIP/2.0 200 OK", "SIP/2.0 200 OK", "SIP/2.0 200 OK"]
    assert "a=sendrecv" in xml


def test_a_phone_that_ignores_reinvites_never_answers_them():
    xml = sipp23.answering_phone(reinvite="ignore", ring_ms=500)
    check_plumbing(xml)
    assert sent(xml)[:3] == ["SIP/2.0 100 Trying", "SIP/2.0 180 Ringing", "SIP/2.0 200 OK"]
    reinvite = xml.split('<label id="reinvite"/>')[1].split('<label id="notify"/>')[0]
    assert "<send" not in reinvite


def test_a_holding_phone_sends_sendonly_then_sendrecv_with_new_sdp_versions():
    xml = sipp23.holding_phone(hold_after_ms=700, unhold_after_ms=900)
    check_plumbing(xml)
    invites = [s.text for s in steps(xml) if s.tag == "send" and s.text.strip().startswith("INVITE")]
    assert [("sendonly" in i, re.search(r"o=sipp 1 (\d+)", i).group(1)) for i in invites] == [(True, "3"), (False, "4")]
    assert 'milliseconds="700"' in xml and 'milliseconds="900"' in xml


def test_a_referring_phone_sends_a_blind_refer_to_the_extension():
    xml = sipp23.referring_phone("103", after_ms=1500)
    check_plumbing(xml)
    assert "REFER [$peer] SIP/2.0" in sent(xml)
    assert "Refer-To: <sip:103@127.0.0.1>" in xml
    assert [s.get("response") for s in steps(xml) if s.tag == "recv" and s.get("response")] == ["202"]


def test_an_attended_transferring_phone_calls_the_target_then_refers_with_replaces():
    xml = sipp23.attended_transferring_phone("104", "165", "cti-test-165", hold=True)
    check_plumbing(xml)
    requests = [s for s in sent(xml) if not s.startswith("SIP/2.0")]
    assert [r.split()[0] for r in requests] == ["INVITE", "ACK", "INVITE", "ACK", "INVITE", "ACK", "REFER"]
    assert "[authentication username=165 password=cti-test-165]" in xml
    assert "Refer-To: <sip:104@127.0.0.1?Replaces=[call_id]%3Bto-tag%3D[$t2tag]%3Bfrom-tag%3D[pid]SIPpTag02>" in xml
    assert xml.count("<timewait") == 1 and xml.endswith('  <timewait milliseconds="200"/>\n</scenario>\n')
    assert "sendonly" not in sipp23.attended_transferring_phone("104", "165", "cti-test-165")
