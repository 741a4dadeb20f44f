"""The report as one HTML page that opens offline: plotly's script is embedded once, each
watch gets one figure (its metrics and its sync and upload state on one shared time axis),
a table of its holes and one of its days."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from phoneagent.report.collect import DeviceReport, Hole, Series
from phoneagent.report.downsample import min_max
from protocol.metrics import Metric

_TITLES = {
    Metric.HEART_RATE: "Heart rate (bpm)",
    Metric.SPO2: "SpO2 (%)",
    Metric.SKIN_TEMPERATURE: "Skin temperature (°C)",
    Metric.STEPS: "Steps (per sample)",
}
_ROWS = (Metric.HEART_RATE, Metric.SPO2, Metric.SKIN_TEMPERATURE, Metric.STEPS)
_STATUS_ROW = len(_ROWS) + 1
_HOLE_COLOURS = ("#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
_LABELLED_HOLES = 40
"""Only the widest holes get a label on the chart (more would cover it); the table
below the chart lists every one."""
_STATUS_NOTE = (
    "The store keeps no log of sync sessions. The last row shows what it does keep: how "
    "far each watch is synced (its sync position) and uploaded (per endpoint, the upload "
    "position), on the measurement time axis; and, by the phone's clock, the last failed "
    "sync session and the upload sessions of the disclosure ledger that fall in the range."
)
_DOWNSAMPLING_NOTE = (
    "Long ranges are down-sampled for drawing: the time axis is cut into 1,200 buckets and "
    "each keeps its lowest and its highest value, so no extreme is lost. The daily table is "
    "computed from every sample."
)


def page(reports: Sequence[DeviceReport], since: int | None, until: int | None) -> str:
    """The whole HTML document."""
    sections = "\n".join(_section(n, r) for n, r in enumerate(reports))
    generated = _iso(int(datetime.now(UTC).timestamp()))
    scope = f"from {_iso(since) if since else 'the first sample'} to "
    scope += _iso(until) if until else "the last sample"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>phoneagent report</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }}
th {{ background: #f2f2f2; }} td.text {{ text-align: left; }}
.note {{ color: #555; max-width: 60em; }}
</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>phoneagent report</h1>
<p class="note"><strong>Personal health data.</strong> Generated {generated} from the
encrypted store, {scope} (times UTC, by the watch's clock). Keep this file private.</p>
<p class="note">{_STATUS_NOTE}</p>
<p class="note">{_DOWNSAMPLING_NOTE}</p>
{sections or "<p>No paired watches in this store.</p>"}
</body></html>
"""


def _section(number: int, report: DeviceReport) -> str:
    device = report.device
    name = f"{device.name} ({device.address})" if device.name else device.address
    if report.start is None:
        return f"<h2>{escape(name)}</h2>\n<p>No samples in this range.</p>"
    figure = figure_of(report)
    chart = figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"chart-{number}",
        config={"displaylogo": False},
    )
    return f"<h2>{escape(name)}</h2>\n{chart}\n{_holes_table(report)}\n{_days_table(report)}"


def figure_of(report: DeviceReport) -> go.Figure:
    """The metrics and the sync and upload state of one watch, on one shared time axis."""
    figure = make_subplots(
        rows=_STATUS_ROW,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.035,
        row_heights=[1.0] * len(_ROWS) + [0.6],
        subplot_titles=[_TITLES[m] for m in _ROWS] + ["Sync and upload"],
    )
    start, end = report.start, report.end
    assert start is not None and end is not None
    for row, metric in enumerate(_ROWS, start=1):
        holes = [h for h in report.holes if h.metric in (None, metric)]
        x, y = _line(report.series[metric], holes, start, end)
        figure.add_trace(
            go.Scatter(x=x, y=y, mode="lines", name=_TITLES[metric], meta=metric.key),
            row=row,
            col=1,
        )
        if not report.series[metric].times:
            figure.add_annotation(
                text="no samples in this range", showarrow=False, row=row, col=1,
                xref="x domain", yref="y domain", x=0.5, y=0.5,
            )  # fmt: skip
    for span in report.spans:
        figure.add_trace(
            go.Scatter(
                x=[_iso(span.start), _iso(span.end)], y=[span.lane, span.lane],
                mode="lines+markers", name=span.lane, hovertext=span.text, meta="status",
            ),
            row=_STATUS_ROW, col=1,
        )  # fmt: skip
    for lane in dict.fromkeys(e.lane for e in report.events):
        events = [e for e in report.events if e.lane == lane]
        figure.add_trace(
            go.Scatter(
                x=[_iso(e.at) for e in events], y=[lane] * len(events), mode="markers",
                name=lane, hovertext=[e.text for e in events], meta="status",
            ),
            row=_STATUS_ROW, col=1,
        )  # fmt: skip
    _shade(figure, report.holes)
    figure.update_layout(
        height=1100,
        showlegend=False,
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 60, "b": 40},
    )
    figure.update_xaxes(type="date", range=[_iso(start), _iso(end)])
    return figure


def _line(
    series: Series, holes: Sequence[Hole], start: int, end: int
) -> tuple[list[str | None], list[float | None]]:
    """The down-sampled points, with a break (a None) inside every hole so that no line
    is drawn across it."""
    times, values = min_max(series.times, series.values, start, end)
    x: list[str | None] = []
    y: list[float | None] = []
    breaks = iter(sorted((h.start + h.end) // 2 for h in holes))
    next_break = next(breaks, None)
    for t, v in zip(times, values, strict=True):
        while next_break is not None and next_break < t:
            if x and x[-1] is not None:
                x.append(_iso(next_break))
                y.append(None)
            next_break = next(breaks, None)
        x.append(_iso(t))
        y.append(v)
    return x, y


def _shade(figure: go.Figure, holes: Sequence[Hole]) -> None:
    """A band over each hole, across every chart or only its metric's, coloured by reason;
    the widest labelled."""
    colours: dict[str, str] = {}
    for hole in holes:
        colour = colours.setdefault(hole.reason, _HOLE_COLOURS[len(colours) % len(_HOLE_COLOURS)])
        figure.add_shape(
            type="rect", xref="x", yref=_height_of(hole), x0=_iso(hole.start), x1=_iso(hole.end),
            y0=0, y1=1, fillcolor=colour, opacity=0.18, line_width=0, layer="below",
        )  # fmt: skip
    widest = sorted(holes, key=lambda h: h.end - h.start, reverse=True)[:_LABELLED_HOLES]
    for hole in widest:
        figure.add_annotation(
            x=_iso((hole.start + hole.end) // 2), y=1.0, xref="x", yref=_height_of(hole),
            text=escape(hole.reason), showarrow=False, textangle=-90, yanchor="top",
            font={"size": 10, "color": colours[hole.reason]},
        )  # fmt: skip


def _height_of(hole: Hole) -> str:
    """The whole figure's height for a hole in every metric, else its metric's chart's."""
    if hole.metric is None:
        return "paper"
    row = _ROWS.index(hole.metric) + 1
    return f"y{row if row > 1 else ''} domain"


def _holes_table(report: DeviceReport) -> str:
    rows = [
        [
            _iso(h.start),
            _iso(h.end),
            _duration(h.end - h.start),
            "every metric" if h.metric is None else _TITLES[h.metric],
            h.reason,
            str(h.missing_seqs),
        ]
        for h in report.holes
    ]
    totals = Counter[str]()
    for gap in report.gap_rows:
        totals[gap.reason] += gap.last_seq - gap.first_seq + 1
    summary = ", ".join(f"{reason}: {n}" for reason, n in sorted(totals.items())) or "none"
    return (
        f"<p>Seqs the store records as missing, by reason (whole history): {escape(summary)}."
        "</p>\n"
        + _table(
            "Holes in the data (shaded above)",
            ["from", "to", "for", "in", "why", "missing seqs"],
            rows,
            text_columns={3, 4},
        )
    )


def _days_table(report: DeviceReport) -> str:
    rows = [
        [
            d.day.isoformat(),
            "" if d.resting_hr is None else f"{d.resting_hr:.1f}",
            str(d.steps),
            "" if d.min_spo2 is None else f"{d.min_spo2:.1f}",
        ]
        for d in report.days
    ]
    return _table(
        "Days (UTC; resting heart rate: mean of the day's lowest tenth of readings)",
        ["day", "resting HR (bpm)", "steps", "min SpO2 (%)"],
        rows,
        text_columns=set(),
    )


def _table(
    caption: str, header: Sequence[str], rows: Iterable[Sequence[str]], text_columns: set[int]
) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "\n".join(
        "<tr>"
        + "".join(
            f'<td class="text">{escape(c)}</td>' if i in text_columns else f"<td>{escape(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><caption>{escape(caption)}</caption><tr>{head}</tr>\n{body}</table>"


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min"
