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


def test_a_seat_that_names_its_domain_signs_in_only_with_its_domains_phones(switch):
    from conftest import config_text

    sw = switch
    sw.write_config(config_text().replace("    name: Dave\n", "    name: Dave\n    domain: b.example\n"))
    assert sw.cti("checkin", "8001 104 p104 101").startswith("+OK 104 signed in to 8001 as agent on user/101@b.example")
    sw.cti("checkout", "104")
    assert sw.cti("checkin", "8001 104 p104 101@a.example").startswith(
        "-ERR not_allowed seat 104 signs in with phones of b.example"
    )
    s = sw.dial("checkin", "8001 104", user="101", domain_name=DOMAIN, keys="p104#")
    assert s.variables["cti_code"] == "not_allowed", "a phone of the default domain is not b.example's"


# -- supervisor scope (issue 12) ----------------------------------------------------------------------------


def test_a_supervisor_limited_in_the_config_acts_only_on_its_seats(switch):
    from conftest import config_text

    sw = switch
    sw.write_config(config_text().replace("    name: Bob\n", '    name: Bob\n    supervises: ["104"]\n'))
    sw.watch()
    for spec in ("8001 101 p101 101", "8001 102 p102 102 internal supervisor", "8001 104 p104 104"):
        assert sw.cti("checkin", spec).startswith("+OK")
    assert sw.cti("busy", "101 - 102").startswith("-ERR not_supervisor supervisor 102 supervises 104, not seat 101")
    assert sw.cti("busy", "104 - 102").startswith("+OK")
    sw.call("101")
    assert sw.cti("monitor", "101 102").startswith("-ERR not_supervisor ")
    assert sw.cti("stopcall", "101 102").startswith("-ERR not_supervisor ")


def test_a_supervisor_limited_in_the_config_unlocks_only_its_seats(switch):
    """``cti.unlock`` asks the same scope as every other supervisor verb (issue 21): the lock of
    a seat outside it stays, and the refusal changes nothing."""
    from conftest import config_text

    sw = switch
    sw.write_config(
        config_text().replace("    name: Bob\n", '    name: Bob\n    supervises: ["104"]\n')
        + "lockout:\n  max_failures: 1\n  duration: 120\n"
    )
    assert sw.cti("checkin", "8001 102 p102 102 internal supervisor").startswith("+OK")
    for seat in ("101", "104"):
        assert "locked for 120s" in sw.cti("checkin", f"8001 {seat} wrong 15{seat[-1]}")
    assert sw.cti("unlock", "101 102") == "-ERR not_supervisor supervisor 102 supervises 104, not seat 101\n"
    assert sw.cti("checkin", "8001 101 p101 101").startswith("-ERR locked seat 101 is locked"), "still locked"
    assert sw.cti("unlock", "104 102") == "+OK 104 unlocked\n"
    assert sw.cti("checkin", "8001 104 p104 104").startswith("+OK")


def test_a_config_scope_names_hotlines_or_seats(tmp_path):
    import pytest
    from conftest import config_text

    from cti import config
    from cti.domain.errors import CtiError

    path = tmp_path / "cti.yaml"
    path.write_text(config_text().replace("    name: Bob\n", '    name: Bob\n    supervises: ["nobody"]\n'))
    with pytest.raises(CtiError) as err:
        config.load(str(path))
    assert "'nobody' is neither a hotline nor a seat" in err.value.message


def test_a_monitor_tone_warns_both_parties_when_listening_starts(switch):
    from conftest import config_text

    sw = switch
    sw.write_config(
        config_text().replace("    name: Sales\n", "    name: Sales\n    monitor_tone: 'tone_stream://%(300,0,1400)'\n")
    )
    sw.watch()
    sw.cti("checkin", "8001 101 p101 101")
    sw.cti("checkin", "8001 102 p102 102 internal supervisor")
    customer, agent = sw.call("101")
    sup = sw.cti("monitor", "101 102").rsplit("(leg ", 1)[1].rstrip(")\n")
    sw.pump()
    assert sw.core.broadcasts == [], "not while the supervisor's phone rings"
    sw.core.answer(sup)
    sw.pump()
    assert sw.core.broadcasts == [("tone_stream://%(300,0,1400)", [agent.uuid, customer.uuid])]
    sw.cti("whisper", "101 102")
    assert len(sw.core.broadcasts) == 1, "once per session, not per mode"
