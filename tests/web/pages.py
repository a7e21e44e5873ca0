"""What a person does on the pages, for the browser tests: log in, click, read. Every wait is
for a DOM condition (WebDriverWait), never a sleep."""

from __future__ import annotations

from typing import Optional

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

WAIT = 15.0


def wait(driver, condition, seconds: float = WAIT, what: str = ""):
    """``condition(driver)`` once it is true; an element re-rendered under it (stale) is looked up again."""
    return WebDriverWait(driver, seconds, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: condition(d), message=what
    )


def css(driver, selector: str):
    return driver.find_elements(By.CSS_SELECTOR, selector)


def shown(driver, selector: str, seconds: float = WAIT):
    """The first visible element ``selector`` matches, once there is one."""

    def find(d):
        for el in css(d, selector):
            if el.is_displayed():
                return el
        return None

    return wait(driver, find, seconds, f"nothing visible matches {selector}")


def click_on(driver, selector: str, seconds: float = WAIT) -> None:
    """Click the first visible element ``selector`` matches. A page that redraws it between the
    look and the click (the wallboard refreshes its figures) is looked at again."""
    from selenium.common.exceptions import StaleElementReferenceException

    def go(d):
        for el in css(d, selector):
            try:
                if el.is_displayed():
                    el.click()
                    return True
            except StaleElementReferenceException:
                return None
        return None

    wait(driver, go, seconds, f"nothing visible to click matches {selector}")


def log_in(driver, url: str, seat: str, password: str) -> None:
    driver.get(url)
    driver.delete_all_cookies()
    driver.execute_script("localStorage.clear()")
    driver.get(url)
    shown(driver, "[data-login] [name=seat]").send_keys(seat)
    css(driver, "[data-login] [name=password]")[0].send_keys(password)
    css(driver, "[data-login] button[type=submit]")[0].click()


def logged_in(driver, seat: str) -> None:
    shown(driver, f'[data-toolbar] [data-seat="{seat}"]')
    wait(driver, lambda d: d.execute_script("return document.body.dataset.conn") == "online", what="page online")


def state(driver, seat: str, where: str = "[data-toolbar]") -> Optional[str]:
    try:
        els = css(driver, f'{where} [data-seat="{seat}"]')
        return els[0].get_attribute("data-state") if els else None
    except StaleElementReferenceException:
        return None


def until_state(driver, seat: str, status: str, where: str = "[data-toolbar]") -> None:
    wait(driver, lambda d: state(d, seat, where) == status, what=f"{seat} {status} in {where} (is {state(driver, seat, where)})")


def click(driver, verb: str, where: str = "[data-toolbar]") -> None:
    def once(d):
        shown(d, f'{where} [data-action="{verb}"]').click()
        return True

    wait(driver, once, what=f"click {verb} in {where}")


def tile_click(driver, seat: str, verb: str) -> None:
    click(driver, verb, f'[data-tiles] [data-seat="{seat}"]')


def pick_reason(driver, reason: str, where: str = "[data-toolbar] [data-reason]") -> None:
    def once(d):
        Select(shown(d, where)).select_by_value(reason)
        return True

    wait(driver, once, what=f"pick {reason}")


def error(driver) -> str:
    try:
        for el in css(driver, "[data-error]"):
            if el.is_displayed():
                return el.text
    except StaleElementReferenceException:
        return error(driver)
    return ""


def until_error(driver, prefix: str) -> str:
    return wait(
        driver, lambda d: error(d).startswith(prefix) and error(d), what=f"an error {prefix!r} (shown: {error(driver)!r})"
    )


def no_error(driver) -> None:
    assert error(driver) == "", error(driver)


def sign_in(driver, phone: str, supervisor: bool = False) -> None:
    """The toolbar's sign-in (签入) with the seat's every hotline on ``phone``."""

    def once(d):
        box = shown(d, "[data-checkin] [name=phone]")
        box.clear()
        box.send_keys(phone)
        sup = css(d, "[data-checkin] [name=as_supervisor]")
        if sup and sup[0].is_selected() != supervisor:
            sup[0].click()
        shown(d, '[data-checkin] [data-action="checkin"]').click()
        return True

    wait(driver, once, what="sign in")


def agent_at_work(browsers, url: str, seat: str, password: str):
    """A new page: ``seat`` logged in, signed in on its own phone, idle. The page."""
    page = browsers.new()
    log_in(page, url, seat, password)
    logged_in(page, seat)
    sign_in(page, seat)
    until_state(page, seat, "idle")
    return page
