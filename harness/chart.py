"""Pictures of a run, shared by the fleet benchmark and the soak runs: plotly draws them,
as one offline HTML file (its script embedded) and as a PNG that Debian's headless
Chromium (``scripts/ci-setup.sh``), driven by playwright, takes of that file.

``over_time`` stacks panels of lines on one shared time axis, with moments (a soak's
faults) as labelled vertical lines across every panel. Needs the test extras (playwright).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go
from playwright.async_api import async_playwright
from plotly.colors import qualitative
from plotly.subplots import make_subplots

_PALETTE = qualitative.Plotly
_DIV = "chart"


@dataclass(frozen=True)
class Series:
    """One line. Lines of one ``group`` share a colour and a legend entry's toggle."""

    name: str
    x: Sequence[float]
    y: Sequence[float | None]
    group: str = ""
    dash: str = "solid"  # plotly's line dash: "dot" tells p50 from p99 in one colour


@dataclass(frozen=True)
class Panel:
    title: str
    series: Sequence[Series]


def over_time(
    panels: Sequence[Panel], x_title: str, moments: Sequence[tuple[float, str]] = ()
) -> go.Figure:
    """The panels one above the other on a shared x axis; each moment ``(x, label)`` a
    vertical line through all of them, coloured and labelled by its label."""
    figure = make_subplots(
        rows=len(panels),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=[p.title for p in panels],
    )
    groups: dict[str, str] = {}
    for row, panel in enumerate(panels, start=1):
        for series in panel.series:
            group = series.group or series.name
            colour = groups.setdefault(group, _PALETTE[len(groups) % len(_PALETTE)])
            figure.add_trace(
                go.Scatter(
                    x=list(series.x),
                    y=list(series.y),
                    name=series.name,
                    legendgroup=group,
                    mode="lines",
                    line={"color": colour, "dash": series.dash},
                ),
                row=row,
                col=1,
            )
    kinds = sorted({label for _, label in moments})
    for x, label in moments:
        colour = _PALETTE[(kinds.index(label) + 3) % len(_PALETTE)]
        figure.add_shape(
            type="line",
            x0=x,
            x1=x,
            xref="x",
            y0=0,
            y1=1,
            yref="paper",
            line={"color": colour, "width": 1, "dash": "dash"},
        )
        figure.add_annotation(
            x=x,
            xref="x",
            y=1,
            yref="paper",
            yanchor="bottom",
            text=label,
            textangle=-90,
            showarrow=False,
            font={"size": 10, "color": colour},
        )
    figure.update_xaxes(title_text=x_title, row=len(panels), col=1)
    figure.update_layout(
        height=330 * len(panels) + 120,
        template="plotly_white",
        margin={"t": 120 if moments else 60},  # room for the moments' labels
    )
    return figure


def write_html(figure: go.Figure, path: Path) -> None:
    """One file that opens offline: plotly's script (about 4.7 MB) is embedded."""
    path.write_text(figure.to_html(include_plotlyjs=True, div_id=_DIV))


async def write_png(figure: go.Figure, path: Path, width: int = 1100) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not installed (scripts/ci-setup.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="chart-") as tmp:
        page_file = Path(tmp) / "chart.html"
        write_html(figure, page_file)
        async with async_playwright() as playwright:
            # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
            browser = await playwright.chromium.launch(
                executable_path=chromium, args=["--no-sandbox"]
            )
            try:
                page = await browser.new_page(viewport={"width": width, "height": 800})
                await page.goto(page_file.as_uri())
                await page.wait_for_function(
                    f"document.getElementById('{_DIV}')?._fullLayout !== undefined"
                )
                await page.locator(f"#{_DIV}").screenshot(path=path)
            finally:
                await browser.close()
