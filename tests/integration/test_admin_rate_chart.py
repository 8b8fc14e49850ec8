"""The status page's live chart of numbers per second, in headless Chromium, offline.

The page samples the server's ``numbers_issued`` (with its uptime as the clock) from
``/status`` and draws the rate between samples as an inline SVG; nothing else is fetched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cluster, numbers
from tests.integration.admin_support import start_admin
from tests.integration.test_admin_browser import CHROMIUM, Browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/test installs it)"),
]

CHART = "document.getElementById('rate-chart')"
SAMPLES = f"JSON.parse({CHART}.dataset.samples || '[]')"
RATES = f"JSON.parse({CHART}.dataset.rates || '[]')"
BATCH = 1000
BATCHES = 5


def points(browser: Browser) -> list[tuple[float, float]]:
    text: str = browser.js("document.getElementById('rate-line').getAttribute('points')")
    return [(float(x), float(y)) for x, y in (p.split(",") for p in text.split())]


def test_the_chart_draws_the_numbers_issued_per_second(cluster: Cluster, tmp_path: Path) -> None:
    server = cluster.server()
    admin = start_admin(cluster, server.control)
    browser = Browser(tmp_path / "profile")
    try:
        browser.open(f"{admin.url}/")
        browser.wait_for(f"{SAMPLES}.length >= 2")
        assert browser.js("document.getElementById('rate-now').textContent") == "0 numbers/s"
        assert all(y == 120.0 for _, y in points(browser))  # idle: flat at the bottom
        start: list[Any] = browser.js(SAMPLES)[-1]  # [uptime_s, numbers_issued]

        for _ in range(BATCHES):
            assert len(numbers(server.bind, "chart", count=BATCH)) == BATCH
        issued = BATCH * BATCHES
        # Two samples past the traffic: it lies between the start and them.
        browser.wait_for(f"{SAMPLES}.filter(s => s[1] >= {start[1] + issued}).length >= 2", 20)

        samples: list[list[float]] = browser.js(SAMPLES)
        rates: list[list[float]] = browser.js(RATES)
        assert len(rates) == len(samples) - 1 == len(points(browser))
        assert samples[-1][1] == start[1] + issued  # every number the server issued, no more
        # The rates integrate back to the numbers issued between the samples:
        since = next(i for i, s in enumerate(samples) if s == start)
        area = sum(rate * (t - samples[i][0]) for i, (t, rate) in enumerate(rates) if i >= since)
        assert area == pytest.approx(issued)
        peak = max(rate for _, rate in rates)
        assert peak > 0
        ys = [y for _, y in points(browser)]
        assert min(ys) == 0.0  # the peak touches the top of the chart
        assert browser.js("document.getElementById('rate-max').textContent").startswith("peak ")
        # The newest point is at the right edge; the chart scrolls as samples come.
        assert points(browser)[-1][0] == 600.0
    finally:
        browser.close()
