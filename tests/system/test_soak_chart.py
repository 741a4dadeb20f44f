"""A soak's chart as a person sees it (issue 22): a small recorded series written by the
soak's chart writer (``tests/soakchart.py`` on ``harness.chart``, as ``bench_fleet`` uses
it), opened in Debian's headless Chromium: one line per watch and one for the receiver,
one labelled vertical line per fault, and a PNG of it."""

from __future__ import annotations

import asyncio
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright

from tests.soakchart import SoakTimeline

pytestmark = pytest.mark.system

_DRAWN = """gd => [
    gd.querySelectorAll('g.trace.scatter').length,
    gd._fullLayout.shapes.map(s => s.x0),
    Array.from(gd.querySelectorAll('g.annotation text')).map(t => t.textContent),
]"""


async def _drawn(html: Path) -> list[Any]:
    """What Chromium drew of the chart in ``html``: traces, vertical lines' x, labels."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed: run scripts/ci-setup.sh")
    async with async_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await page.goto(html.as_uri())
            chart = page.locator("#chart")
            await chart.locator("g.trace.scatter").first.wait_for()
            drawn: list[Any] = await chart.evaluate(_DRAWN)
            return drawn
        finally:
            await browser.close()


async def test_the_soak_chart_draws_each_watch_the_receiver_and_each_fault(
    tmp_path: Path,
) -> None:
    timeline = SoakTimeline()
    for stored, received in (
        ({"watch0": 10, "watch1": 12}, 0),
        ({"watch0": 20, "watch1": None}, 15),  # watch1's store unreadable then: a gap
        ({"watch0": 30, "watch1": 25}, None),
        ({"watch0": 40, "watch1": 38}, 60),
    ):
        timeline.record((stored, received))
    for kind in ("agent", "disk-full", "agent"):
        timeline.fault(kind)
    said: list[str] = []

    await timeline.write(tmp_path, said.append)

    traces, lines, labels = await _drawn(tmp_path / "soak.html")
    assert traces == 3  # watch0, watch1, the receiver
    assert lines == [moment for moment, _kind in timeline.faults]
    titles = ["Records stored, per watch", "Records at the receiver"]
    assert labels == [*titles, "agent", "disk-full", "agent"]
    png = (tmp_path / "soak.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert width > 500 and height > 500
    assert said == [f"soak: chart {tmp_path / 'soak.png'} ({tmp_path / 'soak.html'} to zoom)"]


def test_a_run_that_never_sampled_draws_nothing(tmp_path: Path) -> None:
    asyncio.run(SoakTimeline().write(tmp_path, print))
    assert list(tmp_path.iterdir()) == []
