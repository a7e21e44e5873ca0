"""The web toolbar on the live switch (issue 18): the web service reaches the real switch over
ESL (genesis), and a routed caller appears on the agent's toolbar, with its screen pop, while
the phone still rings."""

from __future__ import annotations

import pytest
from esl import target
from livefs import config_yaml


def test_a_routed_caller_pops_on_the_agent_toolbar_before_the_phone_answers(live, tmp_path):
    web_conftest = pytest.importorskip("web.conftest")
    from web.pages import agent_at_work, shown, until_state

    host, port, password = target()
    live.write_config(
        config_yaml(extra=f"web:\n  listen: 127.0.0.1\n  esl: {{host: {host}, port: {port}, password: {password}}}\n")
    )
    live.phone("101", "ring")
    web = web_conftest.WebThread(str(live.config))
    browsers = web_conftest.Browsers(tmp_path)
    try:
        web.wait_online()
        page = agent_at_work(browsers, web.url, "101", "p101")
        live.customer("route-8001", cid="13912345678")
        until_state(page, "101", "ringing")
        pop = shown(page, "[data-toolbar] [data-pop]")
        assert pop.get_attribute("data-caller") == "13912345678"
        assert "Sales" in pop.text
        leg = live.wait_leg("101")
        assert live.status("101") == "ringing", "the pop is on screen before the phone answers"
        live.pick_up(leg)
        until_state(page, "101", "in_call")
    finally:
        browsers.close()
        web.close()
