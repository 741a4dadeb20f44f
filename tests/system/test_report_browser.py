"""The report as a person sees it (issue 22): Debian's headless Chromium opens the file
``phoneagent report`` wrote, offline, and what it draws is checked: no console error,
every metric's points (after the documented min/max down-sampling), each hole a break in
every line with a shaded, labelled band, and a screenshot kept beside the test's files.

Chromium comes from Debian (``scripts/ci-setup.sh``), driven by playwright with
``executable_path``: playwright's own browser downloads are never used.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Route, sync_playwright

from phoneagent.report import write_report
from phoneagent.report.downsample import min_max
from phoneagent.store import Store, read_key_file
from protocol.metrics import Metric
from tests.reportdata import (
    DIP,
    HOLES,
    SPIKE,
    WATCH,
    add_sync_and_upload,
    bands,
    fill_store,
    holes_in,
)

pytestmark = pytest.mark.system

# Per trace of the chart: what it stands for (``meta``), its points that are drawn (not
# the breaks), and how many separate line pieces the browser rendered for it.
_TRACES = """gd => Array.from(gd.querySelectorAll('g.trace.scatter')).map(g => {
    const trace = g.__data__[0].trace;
    return [trace.meta, trace.y.filter(v => v !== null), g.querySelectorAll('path.js-line').length];
})"""

_TEXTS = "all => all.map(t => t.textContent)"  # SVG text has no innerText


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail(
            "Debian's chromium is not installed; the report's browser test needs it: "
            "run scripts/ci-setup.sh (apt-get install chromium)"
        )
    return found


@pytest.fixture
def page() -> Iterator[tuple[Page, list[str]]]:
    """A fresh headless Chromium page and the errors it reports (console and script)."""
    errors: list[str] = []
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: errors.append(str(e)))

            # Offline: any request leaving the file would be a CDN the report must not need.
            def refuse(route: Route) -> None:
                errors.append(f"fetched {route.request.url}")
                route.abort()

            tab.route("http*://**", refuse)
            yield tab, errors
        finally:
            browser.close()


def _expected_points(data: Path, key_file: Path) -> dict[str, list[float]]:
    """What each metric's chart must draw: the store's samples, down-sampled as documented."""
    with Store.open(data, read_key_file(key_file)) as store:
        samples = list(store.iter_samples(WATCH))
    start, end = samples[0].timestamp, samples[-1].timestamp
    expected = {}
    for metric in Metric:
        mine = [s for s in samples if s.metric is metric]
        _, values = min_max([s.timestamp for s in mine], [s.value for s in mine], start, end)
        expected[metric.key] = values
    return expected


def test_the_report_renders_every_metric_with_its_holes(
    tmp_path: Path, page: tuple[Page, list[str]]
) -> None:
    data = tmp_path / "agent"
    key_file = fill_store(data)
    add_sync_and_upload(data, key_file)
    out = tmp_path / "report.html"
    with Store.open(data, read_key_file(key_file)) as store:
        write_report(store, out, None, None, None)
    tab, errors = page

    tab.goto(out.as_uri())
    tab.wait_for_function("document.getElementById('chart-0')?._fullLayout !== undefined")
    chart = tab.locator("#chart-0")
    traces: list[list[Any]] = chart.evaluate(_TRACES)
    tab.screenshot(path=tmp_path / "report.png", full_page=True)

    assert errors == []
    expected = _expected_points(data, key_file)
    drawn = {meta: points for meta, points, _ in traces if meta in expected}
    assert drawn == expected
    heart = drawn[Metric.HEART_RATE.key]
    assert len(heart) < 5000 and SPIKE in heart and DIP in heart  # down-sampled, extremes kept
    # Every hole breaks the lines it is in: one more piece than holes.
    assert {meta: pieces for meta, _, pieces in traces if meta in expected} == {
        m.key: len(holes_in(m)) + 1 for m in Metric
    }
    assert chart.locator(".shapelayer path").count() == bands()
    labels = chart.locator(".annotation-text").evaluate_all(_TEXTS)
    assert all(hole.reason in labels for hole in HOLES), labels
    lanes = chart.locator(".yaxislayer-above text").evaluate_all(_TEXTS)
    assert {"synced", "uploaded (eu)", "last sync failed", "upload sessions"} <= set(lanes)
    assert (tmp_path / "report.png").stat().st_size > 0
