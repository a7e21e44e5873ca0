"""The web service end to end without a switch: the shim's cti behind an ESL front, the real
web service (its own event loop, on a thread) connected to it with genesis, and headless
Chromium (Debian's chromium + chromium-driver) driven by Selenium."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, List

import freeswitch
import pytest
from conftest import Switch, config_text

from cti import app as wiring

from .eslfront import EslFront

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PHONES = ("101", "102", "103", "104", "105", "201", "202")


def web_config(esl_port: int, extra: str = "") -> str:
    return config_text(
        extra=f"""web:
  listen: 127.0.0.1
  esl: {{host: 127.0.0.1, port: {esl_port}, password: ClueCon}}
  busy_reasons: [lunch, meeting, training]
{extra}"""
    ).replace("    name: Sales\n", "    name: Sales\n    wrap_up: 30\n    export_vars: [crm_id]\n", 1)


class WebThread:
    """The web service on its own event loop and thread, as ``python3 -m cti.web`` runs it."""

    def __init__(self, config_path: str) -> None:
        from cti.web.service import Service

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.service = self.call(lambda: Service(config_path, port=0))
        self.port = asyncio.run_coroutine_threadsafe(self.service.start(), self.loop).result(10)
        self.url = f"http://127.0.0.1:{self.port}/"

    def call(self, fn: Callable):
        async def run():
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def wait_online(self, seconds: float = 10.0) -> None:
        """Every switch answers and the floor is read."""
        deadline = time.monotonic() + seconds
        links = self.service.links.values()
        while not (all(link.up for link in links) and self.service._synced.is_set()):
            why = "; ".join(f"{link.label}: {link.why}" for link in links if not link.up)
            assert time.monotonic() < deadline, f"the web service never reached the switches: {why}"
            time.sleep(0.02)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.service.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Stack:
    def __init__(self, switch: Switch, front: EslFront, web: WebThread) -> None:
        self.switch, self.front, self.web = switch, front, web
        self.url = web.url
        self._stop = threading.Event()
        self._pumper = threading.Thread(target=self._pump, daemon=True)  # the call watcher's loop
        self._pumper.start()

    def _pump(self) -> None:
        while not self._stop.wait(0.01):
            self.switch.pump()

    def close(self) -> None:
        self._stop.set()
        self._pumper.join(5)

    def reset(self) -> None:
        """Every seat signed out, no lockout, no call: a clean floor for the next test."""
        for ch in list(self.switch.core.channels):
            if ch in self.switch.core.channels:
                self.switch.core.hangup(ch)
        for seat in PHONES:
            self.switch.cti("help", f"{seat} cancel")
            self.switch.cti("checkout", seat)
            self.switch.cti("unlock", seat)
        for token in list(self.web.service.logins):
            self.web.call(lambda t=token: self.web.service.logins.pop(t, None))


@pytest.fixture(scope="package")
def stack(tmp_path_factory):
    core = freeswitch.reset()
    core.now = float(int(time.time()))  # the page's timers read the switch's clock against its own
    conf = tmp_path_factory.mktemp("conf")
    core.globals["conf_dir"] = str(conf)
    core.globals["recordings_dir"] = str(tmp_path_factory.mktemp("recordings"))  # the switch's, read over ESL
    core.phones.update({ext: "ring" for ext in PHONES})
    wiring.forget()
    wiring.clock = core.clock
    sw = Switch(core, conf / "cti.yaml")
    front = EslFront()
    sw.write_config(web_config(front.port))
    sw.watch()
    web = WebThread(str(conf / "cti.yaml"))
    web.wait_online()
    st = Stack(sw, front, web)
    try:
        yield st
    finally:
        st.close()
        web.close()
        front.close()


@pytest.fixture
def floor(stack):
    stack.reset()
    stack.web.wait_online()
    yield stack
    stack.reset()


# -- browsers ---------------------------------------------------------------------------------
def _browser_or_skip() -> None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.skip(f"no {path} (Debian: apt-get install chromium chromium-driver; scripts/test.sh does)")


class Browsers:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.drivers: List = []

    def new(self, lang: str = "en-US"):
        _browser_or_skip()
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        profile = Path(tempfile.mkdtemp(prefix="cti-chromium-", dir=self.tmp))
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--window-size=1440,900",
            f"--lang={lang}",
            f"--user-data-dir={profile}",
        ):
            opts.add_argument(arg)
        opts.add_experimental_option("prefs", {"intl.accept_languages": lang})
        driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
        self.drivers.append((driver, profile))
        return driver

    def close(self) -> None:
        for driver, profile in self.drivers:
            try:
                driver.quit()
            finally:
                shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="package")
def browsers(tmp_path_factory):
    b = Browsers(tmp_path_factory.mktemp("browsers"))
    yield b
    b.close()


@pytest.fixture(scope="package")
def agent_browser(browsers):
    return browsers.new()


@pytest.fixture(scope="package")
def supervisor_browser(browsers):
    return browsers.new()


def reset_browser(driver, url: str) -> None:
    driver.get(url)
    driver.delete_all_cookies()
    driver.execute_script("localStorage.clear()")
    driver.get(url)
