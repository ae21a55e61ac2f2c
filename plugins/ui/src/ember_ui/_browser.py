"""Headless Chromium for the UI's browser test and ``tools/ui_screenshot.py``.

Uses the system's Chromium and chromedriver (Debian's ``chromium`` and ``chromium-driver``
packages) through Selenium, with the driver's path given explicitly so that Selenium Manager
never runs (it would try to download a browser). Nothing here is needed to *serve* the UI;
``selenium`` comes with the ``test`` extra.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

__all__ = ["CHROMEDRIVER", "CHROMIUM", "CHROMIUM_FLAGS", "BrowserMissingError", "open_chromium"]

#: Where Debian's ``chromium`` package puts the browser.
CHROMIUM = "/usr/bin/chromium"
#: Where Debian's ``chromium-driver`` package puts chromedriver.
CHROMEDRIVER = "/usr/bin/chromedriver"

#: The flags Chromium runs with: headless, no sandbox (root in CI), and no network use of
#: its own (no updates, sync, QUIC or first-run pages).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


class BrowserMissingError(RuntimeError):
    """Chromium, chromedriver or Selenium is not installed; the message says how to get it."""


def _find(path: str, name: str) -> str | None:
    if os.access(path, os.X_OK):
        return path
    return shutil.which(name)


def open_chromium(user_data_dir: str, width: int = 1400, height: int = 1000) -> Any:
    """Start headless Chromium and return its Selenium ``WebDriver`` (call ``quit()``).

    :param user_data_dir: an empty directory for the browser profile (a fresh one each time).
    :param width: the window width in pixels.
    :param height: the window height in pixels.
    :raises BrowserMissingError: Chromium, chromedriver or Selenium is missing.
    """
    browser = _find(CHROMIUM, "chromium")
    driver = _find(CHROMEDRIVER, "chromedriver")
    if browser is None or driver is None:
        raise BrowserMissingError(
            f"headless Chromium is needed: {CHROMIUM} and {CHROMEDRIVER} were not found. "
            f"Install them with `apt-get update && apt-get install -y chromium chromium-driver` "
            f"(.ci/run does this where they are missing)."
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        raise BrowserMissingError(
            "the browser test needs Selenium: pip install 'ember-ui[test]' (or selenium)"
        ) from exc
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.add_argument(f"--window-size={width},{height}")
    service = Service(executable_path=driver)
    return webdriver.Chrome(service=service, options=options)
