"""A benchmark's figures as a PNG beside its result table: plotly draws them and Debian's
headless Chromium (``scripts/ci-setup.sh``), driven by playwright, takes the picture."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import plotly.graph_objects as go
from playwright.async_api import async_playwright


async def write_png(figure: go.Figure, path: Path, width: int = 1100) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not installed (scripts/ci-setup.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="chart-") as tmp:
        page_file = Path(tmp) / "chart.html"
        page_file.write_text(figure.to_html(include_plotlyjs=True, div_id="chart"))
        async with async_playwright() as playwright:
            # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
            browser = await playwright.chromium.launch(
                executable_path=chromium, args=["--no-sandbox"]
            )
            try:
                page = await browser.new_page(viewport={"width": width, "height": 800})
                await page.goto(page_file.as_uri())
                await page.wait_for_function(
                    "document.getElementById('chart')?._fullLayout !== undefined"
                )
                await page.locator("#chart").screenshot(path=path)
            finally:
                await browser.close()
