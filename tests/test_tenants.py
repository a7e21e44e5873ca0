"""Tenants apart (issue 12): a phone is user@domain; a bare extension is the switch's default
domain's; 101@a and 101@b are two phones, 101 and 101@<default domain> one."""

from __future__ import annotations

from _calls import DOMAIN


def test_two_tenants_101_sign_in_to_different_seats(switch):
    sw = switch
    assert sw.cti("checkin", "8001 101 p101 101@a.example") == "+OK 101 signed in to 8001 as agent on user/101@a.example, idle\n"
    assert sw.cti("checkin", "8001 104 p104 101@B.example").startswith("+OK 104 signed in to 8001 as agent on user/101@b.example")


def test_a_bare_extension_is_the_default_domains(switch):
    sw = switch
    assert sw.cti("checkin", "8001 101 p101 101").startswith("+OK")
    assert sw.cti("checkin", f"8001 104 p104 101@{DOMAIN}").startswith("-ERR phone_in_use phone 101 is in use by seat 101")
    assert sw.cti("checkin", "8001 104 p104 user/101").startswith("-ERR phone_in_use")


def test_a_phone_of_another_domain_acts_on_its_own_seat(switch):
    sw = switch
    sw.cti("checkin", "8001 101 p101 101")
    sw.cti("checkin", "8001 104 p104 101@b.example")
    s = sw.dial("busy", "", user="101", domain_name="b.example")
    assert s.variables["cti_result"] == "+OK 104 busy"
    s = sw.dial("busy", "", user="101", domain_name=DOMAIN)
    assert s.variables["cti_result"] == "+OK 101 busy"


def test_a_call_to_another_tenants_101_is_that_tenants_seats(switch):
    sw = switch
    sw.watch()
    sw.cti("checkin", "8001 101 p101 101")
    sw.cti("checkin", "8001 104 p104 101@b.example")
    sw.core.incoming("user/101@b.example")
    sw.pump()
    assert (sw.record("104")["status"], sw.record("101")["status"]) == ("ringing", "idle")
