"""Driving the page from a test: waits that survive the live views re-rendering, and the checks every page shares."""
from __future__ import annotations

from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

BASE = "dash-tiny-llama"  # the base the session's hub registers (conftest.registered)
BASE_SOURCE = "tiny:llama"

def wait_for(driver, predicate, timeout=20.0, what="condition"):
    # the page re-renders live parts (job header, progress) in place, so an element can go stale between polls
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2,
                             ignored_exceptions=(StaleElementReferenceException,)).until(predicate, message=what)
    except TimeoutException as exc:  # say what the page showed instead
        shown = driver.execute_script("const v = document.getElementById('view'); return v ? v.innerText : '';")
        raise TimeoutException(f"{what}; the page shows: {shown[:600]!r}") from exc


def text_of(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css).text


def open_page(driver, url, token, hash_):
    """Load the page with the token in localStorage, the way the token field stores it."""
    driver.get(f"{url}/")
    driver.execute_script("localStorage.setItem('adaptarium-token', arguments[0]);", token)
    driver.get(f"{url}/{hash_}")


def page_errors(driver):
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def overflow(driver) -> int:
    """How far the page scrolls sideways, in CSS pixels (0 when it fits its window)."""
    return driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;")


def unfolded_json(driver) -> list[str]:
    """Raw JSON blocks a reader sees without opening anything: <pre class="json"> outside a closed <details>."""
    return driver.execute_script("""
        return [...document.querySelectorAll('pre.json')].filter(p => {
          for (let d = p.closest('details'); d; d = d.parentElement && d.parentElement.closest('details'))
            if (!d.open) return false;
          return true;
        }).map(p => p.textContent.slice(0, 80));""")


def full_shot(driver, path) -> None:
    """A screenshot of the whole page: the window grows to the page's height for it (width stays 1280)."""
    width, height = driver.get_window_size()["width"], driver.get_window_size()["height"]
    driver.set_window_size(width, max(height, min(driver.execute_script("return document.body.scrollHeight;") + 140,
                                                  6000)))
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(width, height)
