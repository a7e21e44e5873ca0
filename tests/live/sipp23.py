"""SIPp scenarios for the agent's call controls (hold, transfer), as XML strings.

Each function returns a UAS scenario for ``sipp -sf <file> -i 127.0.0.1 -p <port>``: a SIP phone
the switch calls (a directory user whose dial-string is ``sofia/internal/<ext>@127.0.0.1:<port>``).
Every phone answers with PCMU SDP, answers the switch's re-INVITEs (its hold/unhold) with 200 OK
and SDP, and answers the switch's NOTIFYs and BYE; what differs is what the phone itself does after
answering. Observed on FreeSWITCH 1.10.12 (notes-23-facts.md).
"""

from __future__ import annotations

_HEAD = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="{name}">\n'


def _sdp(version: int, direction: str = "sendrecv") -> str:
    return (
        "v=0\n"
        f"o=sipp 1 {version} IN IP[local_ip_type] [local_ip]\n"
        "s=-\n"
        "c=IN IP[media_ip_type] [media_ip]\n"
        "t=0 0\n"
        "m=audio [media_port] RTP/AVP 0 101\n"
        "a=rtpmap:0 PCMU/8000\n"
        "a=rtpmap:101 telephone-event/8000\n"
        f"a={direction}\n"
    )


def _reply(status: str, sdp: str = "", tag: bool = False) -> str:
    """A response to the last request received. ``tag``: add this phone's To tag (its answer to
    the INVITE that opens the dialog; later requests carry the tag already)."""
    body_headers = "Content-Type: application/sdp\nContent-Length: [len]\n" if sdp else "Content-Length: 0\n"
    return f"""  <send><![CDATA[
SIP/2.0 {status}
[last_Via:]
[last_From:]
[last_To:]{";tag=[pid]SIPpTag01[call_number]" if tag else ""}
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
{body_headers}
{sdp}
  ]]></send>
"""


def _request(method: str, headers: str = "", sdp: str = "") -> str:
    """A request this phone sends inside the dialog the switch opened (From/To swapped)."""
    body_headers = "Content-Type: application/sdp\nContent-Length: [len]\n" if sdp else "Content-Length: 0\n"
    return f"""  <send retrans="500"><![CDATA[
{method} [$peer] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$me];tag=[pid]SIPpTag01[call_number]
To: [$them]
Call-ID: [call_id]
CSeq: [cseq] {method}
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
{headers}{body_headers}
{sdp}
  ]]></send>
"""


_ACK_200 = """  <send><![CDATA[
ACK [$peer] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$me];tag=[pid]SIPpTag01[call_number]
To: [$them]
Call-ID: [call_id]
CSeq: [last_cseq_number] ACK
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Length: 0

  ]]></send>
"""


def _answer(ring_ms: int = 0, remember: bool = False) -> str:
    """Receive the INVITE, optionally ring, answer, receive the ACK. ``remember``: keep the
    dialog (``$them``, ``$me``, ``$peer``) to send requests in it (SIPp refuses a scenario that
    assigns a variable it never uses)."""
    ring = ""
    if ring_ms:
        ring = _reply("180 Ringing", tag=True) + f'  <pause milliseconds="{ring_ms}"/>\n'
    recv = '  <recv request="INVITE"/>\n'
    if remember:
        recv = (
            '  <recv request="INVITE">\n'
            "    <action>\n"
            '      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="them"/>\n'
            '      <ereg regexp="[^ ].*" search_in="hdr" header="To:" assign_to="me"/>\n'
            '      <ereg regexp="sip:[^>;]*" search_in="hdr" header="Contact:" assign_to="peer"/>\n'
            "    </action>\n"
            "  </recv>\n"
        )
    return recv + _reply("100 Trying") + ring + _reply("200 OK", _sdp(1), tag=True) + '  <recv request="ACK"/>\n'


def _serve(reinvite: str = "answer", end: str = "done") -> str:
    """Until the switch's BYE: answer its re-INVITEs (``reinvite="answer"``) or leave them
    unanswered (``"ignore"``), answer its NOTIFYs and INFOs; then answer the BYE."""
    on_invite = _reply("200 OK", _sdp(2)) + '  <recv request="ACK"/>\n' if reinvite == "answer" else ""
    return (
        '  <label id="serve"/>\n'
        '  <recv request="INVITE" optional="true" next="reinvite"/>\n'
        '  <recv request="NOTIFY" optional="true" next="notify"/>\n'
        '  <recv request="INFO" optional="true" next="notify"/>\n'
        '  <recv request="BYE"/>\n' + _reply("200 OK") + f'  <nop next="{end}"/>\n'
        '  <label id="reinvite"/>\n' + on_invite + '  <nop next="serve"/>\n'
        '  <label id="notify"/>\n' + _reply("200 OK") + '  <nop next="serve"/>\n'
        f'  <label id="{end}"/>\n'
        '  <timewait milliseconds="200"/>\n'
    )


def answering_phone(ring_ms: int = 0, reinvite: str = "answer") -> str:
    """A phone that answers (after ``ring_ms`` of 180 Ringing) and keeps the call until the
    switch's BYE; its re-INVITEs (the switch's hold/unhold) are answered 200 OK, or with
    ``reinvite="ignore"`` never answered at all."""
    return _HEAD.format(name="cti sipp23: answering phone") + _answer(ring_ms) + _serve(reinvite) + "</scenario>\n"


def _reinvite(version: int, direction: str) -> str:
    return (
        _request("INVITE", sdp=_sdp(version, direction))
        + '  <recv response="100" optional="true"/>\n'
        + '  <recv response="200"/>\n'
        + _ACK_200
    )


def holding_phone(hold_after_ms: int = 1000, unhold_after_ms: int = 2000) -> str:
    """A phone that answers, presses Hold after ``hold_after_ms`` (re-INVITE ``a=sendonly``),
    Unhold ``unhold_after_ms`` later (re-INVITE ``a=sendrecv``), then keeps the call until BYE."""
    return (
        _HEAD.format(name="cti sipp23: phone that holds and unholds")
        + _answer(remember=True)
        + f'  <pause milliseconds="{hold_after_ms}"/>\n'
        + _reinvite(3, "sendonly")
        + f'  <pause milliseconds="{unhold_after_ms}"/>\n'
        + _reinvite(4, "sendrecv")
        + _serve()
        + "</scenario>\n"
    )


def referring_phone(target: str, after_ms: int = 1000, domain: str = "127.0.0.1") -> str:
    """A phone that answers and, ``after_ms`` later, blind-transfers its partner with a REFER
    (``Refer-To: <sip:<target>@<domain>>``); then answers the switch's NOTIFYs and BYE."""
    refer = _request(
        "REFER",
        headers=f"Refer-To: <sip:{target}@{domain}>\nReferred-By: [$me]\n",
    )
    return (
        _HEAD.format(name="cti sipp23: phone that transfers (REFER)")
        + _answer(remember=True)
        + f'  <pause milliseconds="{after_ms}"/>\n'
        + refer
        + '  <recv response="202"/>\n'
        + _serve()
        + "</scenario>\n"
    )


def _second_call(target: str, user: str, password: str, domain: str) -> str:
    """The phone's second call, to ``target``: a new dialog (its own From tag, no To tag) that
    shares the first dialog's Call-ID (SIPp files every message under its Call-ID, so one
    scenario sees both dialogs; the switch tells dialogs apart by their tags). The switch
    challenges it (407) and the phone authenticates as its directory user. Keeps the switch's
    To tag (``$t2tag``) for the Replaces of the REFER."""
    invite = """  <send retrans="500"><![CDATA[
INVITE sip:{target}@{domain}:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{user}@{domain}>;tag=[pid]SIPpTag02
To: <sip:{target}@{domain}>
Call-ID: [call_id]
CSeq: {cseq} INVITE
Contact: <sip:{user}@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
{auth}Content-Type: application/sdp
Content-Length: [len]

{sdp}
  ]]></send>
"""
    ack_407 = f"""  <send><![CDATA[
ACK sip:{target}@{domain}:[remote_port] SIP/2.0
[last_Via:]
From: <sip:{user}@{domain}>;tag=[pid]SIPpTag02
[last_To:]
Call-ID: [call_id]
CSeq: 101 ACK
Max-Forwards: 70
Content-Length: 0

  ]]></send>
"""
    ack_200 = f"""  <send><![CDATA[
ACK [$t2contact] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{user}@{domain}>;tag=[pid]SIPpTag02
[last_To:]
Call-ID: [call_id]
CSeq: 102 ACK
Max-Forwards: 70
Content-Length: 0

  ]]></send>
"""
    args = {"target": target, "domain": domain, "user": user, "sdp": _sdp(1)}
    return (
        invite.format(cseq=101, auth="", **args)
        + '  <recv response="100" optional="true"/>\n'
        + '  <recv response="407" auth="true"/>\n'
        + ack_407
        + invite.format(cseq=102, auth=f"[authentication username={user} password={password}]\n", **args)
        + '  <recv response="100" optional="true"/>\n'
        + '  <recv response="180" optional="true"/>\n'
        + '  <recv response="183" optional="true"/>\n'
        + '  <recv response="200">\n'
        + "    <action>\n"
        + '      <ereg regexp="tag=([^;>]*)" search_in="hdr" header="To:" assign_to="t2to,t2tag"/>\n'
        + '      <ereg regexp="sip:[^>;]*" search_in="hdr" header="Contact:" assign_to="t2contact"/>\n'
        + '      <log message="second call answered: [$t2to]"/>\n'
        + "    </action>\n"
        + "  </recv>\n"
        + ack_200
    )


def attended_transferring_phone(
    target: str,
    user: str,
    password: str,
    consult_ms: int = 1000,
    after_ms: int = 1000,
    hold: bool = False,
    domain: str = "127.0.0.1",
) -> str:
    """A phone that answers the switch's call and, ``after_ms`` later, transfers it attended:
    (``hold``: presses Hold first, a re-INVITE ``a=sendonly``) places its own second call to
    ``target`` (authenticated as directory user ``user``/``password``), talks ``consult_ms``,
    then sends on the FIRST dialog a REFER whose Refer-To names ``target`` with
    ``Replaces=<second call>``; then answers the switch's NOTIFYs and both dialogs' BYEs."""
    replaces = "[call_id]%3Bto-tag%3D[$t2tag]%3Bfrom-tag%3D[pid]SIPpTag02"
    refer = _request(
        "REFER",
        headers=f"Refer-To: <sip:{target}@{domain}?Replaces={replaces}>\nReferred-By: [$me]\n",
    )
    return (
        _HEAD.format(name="cti sipp23: phone that transfers attended (REFER with Replaces)")
        + _answer(remember=True)
        + f'  <pause milliseconds="{after_ms}"/>\n'
        + (_reinvite(3, "sendonly") if hold else "")
        + _second_call(target, user, password, domain)
        + f'  <pause milliseconds="{consult_ms}"/>\n'
        + refer
        + '  <recv response="202"/>\n'
        + _serve(end="first_bye").replace('  <timewait milliseconds="200"/>\n', "")  # only the last may
        + _serve(end="second_bye")
        .replace('"serve"', '"serve2"')
        .replace('"reinvite"', '"reinvite2"')
        .replace('"notify"', '"notify2"')
        + "</scenario>\n"
    )
