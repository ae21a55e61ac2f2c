"""The pages in a real browser: headless Chromium (Debian's packages) driven by Selenium.

Never skipped: without Chromium the test fails and says how to install it (``.ci/run``
installs it where it is missing).
"""

from __future__ import annotations

import pytest
from ember.testing import advance_batches
from ember_ui._browser import BrowserMissingError, open_chromium

SIZES = [4, 9, 2, 7, 5, 1]
FAILING = 2  # the index of the batch whose second output operation fails


@pytest.fixture
def browser(tmp_path):
    try:
        driver = open_chromium(str(tmp_path / "chromium-profile"), 1400, 1300)
    except BrowserMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait_js(driver, script, what, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: d.execute_script(script), message=f"waiting for {what}")


def texts(driver, css):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent)",
        css)


def attrs(driver, css, name):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".map(e => e.getAttribute(arguments[1]))", css, name)


def test_the_pages_show_the_real_batches_live_in_charts_and_tables(
        ember_no_leaks, make_stream, browser, tmp_path):
    s = make_stream("inline")
    lines = s.ssc.queueStream([[f"line {i}"] * n for i, n in enumerate([*SIZES, 3, 6])])
    lines.foreachRDD(lambda rdd: (rdd.count(), s.clock.advance(0.2)))

    def check(rdd):
        if rdd.count() == SIZES[FAILING]:
            raise ValueError("bad record in the batch")

    lines.foreachRDD(check)
    s.ssc.start()
    advance_batches(s.ssc, len(SIZES))
    times = [s.t1 + 1000 * i for i in range(len(SIZES) + 2)]

    browser.get(s.ui.url)
    wait_js(browser, f"return document.body.dataset.version === '{len(SIZES)}'",
            "the page to show every batch")

    # Tables: one row per batch, newest first, with the batch's own records.
    rows = "#completed-batches tbody tr[data-batch-id]"
    assert [int(x) for x in attrs(browser, rows, "data-batch-id")] == times[:6][::-1]
    records = texts(browser, rows + " td:nth-child(2)")
    assert records == [str(n) for n in SIZES[::-1]]
    assert texts(browser, rows + " td:nth-child(4)") == ["200 ms"] * len(SIZES)
    failed = f"#completed-batches tr[data-batch-id='{times[FAILING]}']"
    assert "failed" in browser.find_element("css selector", failed).get_attribute("class")
    assert texts(browser, failed + " details summary") == ["ValueError: bad record in the batch"]
    summary = browser.find_element("id", "summary").text
    assert f"{len(SIZES)} completed batches, {sum(SIZES)} records" in summary
    assert texts(browser, "#receivers tbody td:nth-child(3)") == ["pull source"]
    assert texts(browser, "#receivers tbody td:nth-child(4)") == [str(sum(SIZES))]

    # Charts: a point per batch on each timeline, every batch counted in each histogram.
    for metric in ("inputRate", "schedulingDelay", "processingTime", "totalDelay"):
        svg = f"#timeline-{metric}"
        assert attrs(browser, svg, "data-points") == [str(len(SIZES))]
        dots = attrs(browser, svg + " circle", "data-batch-id")
        assert sorted(int(x) for x in dots) == times[:6]
        assert attrs(browser, f"#histogram-{metric}", "data-total") == [str(len(SIZES))]
        bars = texts(browser, f"#histogram-{metric} text.tick")
        assert sum(int(t) for t in bars if t.isdigit()) == len(SIZES)
    interval = browser.find_elements("css selector", "#timeline-processingTime line.interval")
    assert len(interval) == 1
    assert texts(browser, "#timeline-processingTime text.interval-label") == [
        "batch interval 1 s"]
    assert browser.find_element("id", "avg-inputRate").text == "Avg: 4.67 records/s"
    assert browser.find_element("id", "avg-processingTime").text == "Avg: 200 ms"

    # Live: two more batches appear without reloading.
    advance_batches(s.ssc, 2)
    wait_js(browser, f"return document.body.dataset.version === '{len(SIZES) + 2}'",
            "the live update")
    assert [int(x) for x in attrs(browser, rows, "data-batch-id")] == times[::-1]
    assert attrs(browser, "#timeline-inputRate", "data-points") == [str(len(SIZES) + 2)]
    assert browser.find_element("id", "live").text == "live"
    shot = tmp_path / "statistics.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000

    # The failed batch's page: its output operations, the failure with its traceback.
    browser.find_element("css selector", failed + " td:first-child a").click()
    wait_js(browser, "return document.querySelectorAll('#operations tbody tr').length === 2",
            "the batch page's operations")
    assert browser.current_url.endswith(f"/streaming/batch/?id={times[FAILING]}")
    assert texts(browser, "#operations tbody td:nth-child(3)") == ["succeeded", "failed"]
    trace = browser.find_element("css selector", "#operations tr[data-op-id='1'] pre.traceback")
    assert trace.is_displayed()
    assert trace.text.startswith("Traceback (most recent call last):")
    assert "ValueError: bad record in the batch" in trace.text
    facts = browser.find_element("id", "batch-summary").text
    assert f"Input Size: {SIZES[FAILING]} records" in facts
    assert "Processing Time: 200 ms" in facts
    assert texts(browser, "#batch-inputs tbody td:nth-child(3)") == [str(SIZES[FAILING])]
    assert browser.save_screenshot(str(tmp_path / "batch.png"))
