"""Small SVG drawings written by hand: the admin's charts, the state-machine picture, the benchmarks' plots.

No library and nothing from a CDN: a chart is a string of SVG the server renders into the page (or
a script writes into docs/). Deterministic for the same input, so a committed picture can be
compared with a fresh one. Every text is escaped; numbers are rounded to one decimal.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

FONT = "font-family=\"-apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif\""
INK, MUTED, GRID = "#1f2937", "#6b7280", "#e5e7eb"
PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0891b2", "#db2777")


def n(value: float) -> str:
    """A coordinate: one decimal at most, no trailing zeros."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def text_width(text: str, size: float = 12) -> float:
    """A rough width for laying out labels (no font metrics on the server)."""
    return len(text) * size * 0.56


class Svg:
    def __init__(self, width: float, height: float, *, title: str = "", css_class: str = ""):
        self.width, self.height = width, height
        self.parts: list[str] = []
        attrs = f' class="{escape(css_class)}"' if css_class else ""
        self.open = (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {n(width)} {n(height)}" width="{n(width)}" '
            f'height="{n(height)}" role="img"{attrs} {FONT} font-size="12">'
        )
        if title:
            self.parts.append(f"<title>{escape(title)}</title>")

    def add(self, raw: str) -> None:
        self.parts.append(raw)

    def rect(self, x, y, w, h, *, fill="none", stroke="none", rx=0, extra="") -> None:
        self.add(
            f'<rect x="{n(x)}" y="{n(y)}" width="{n(w)}" height="{n(h)}" rx="{n(rx)}" fill="{fill}" '
            f'stroke="{stroke}"{extra}/>'
        )

    def line(self, x1, y1, x2, y2, *, stroke=GRID, width=1, dash="", extra="") -> None:
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(
            f'<line x1="{n(x1)}" y1="{n(y1)}" x2="{n(x2)}" y2="{n(y2)}" stroke="{stroke}" '
            f'stroke-width="{n(width)}"{dashes}{extra}/>'
        )

    def text(self, x, y, content: str, *, anchor="start", size=12, fill=INK, weight="", extra="") -> None:
        bold = f' font-weight="{weight}"' if weight else ""
        self.add(
            f'<text x="{n(x)}" y="{n(y)}" text-anchor="{anchor}" font-size="{n(size)}" fill="{fill}"{bold}{extra}>'
            f"{escape(content)}</text>"
        )

    def link(self, href: str | None, inner: str, *, title: str = "") -> str:
        tooltip = f"<title>{escape(title)}</title>" if title else ""
        if not href:
            return f"<g>{tooltip}{inner}</g>"
        return f'<a href="{escape(href)}">{tooltip}{inner}</a>'

    def render(self) -> str:
        return "\n".join([self.open, *self.parts, "</svg>"]) + "\n"


@dataclass
class Bar:
    label: str  # under the bar (may be "" for a crowded axis)
    value: float | None  # None: no bar (no data)
    href: str | None = None
    tooltip: str = ""
    alert: bool = False  # drawn in red (past a threshold)


def nice_ceiling(value: float) -> float:
    """1, 2, 2.5, 5 or 10 times a power of ten, at least `value`."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    unit: str = "",
    threshold: float | None = None,
    threshold_label: str = "",
    width: float = 720,
    height: float = 220,
    css_class: str = "chart",
) -> str:
    """Vertical bars with a y axis, an optional dashed threshold line, each bar a link."""
    left, right, top, bottom = 44, 12, 26, 34
    svg = Svg(width, height, title=title, css_class=css_class)
    svg.text(left, 16, title, weight="600", size=13)
    values = [bar.value for bar in bars if bar.value is not None]
    ceiling = nice_ceiling(max([*values, threshold or 0, 0]))
    plot_w, plot_h = width - left - right, height - top - bottom

    def y_of(value: float) -> float:
        return top + plot_h - plot_h * value / ceiling

    for step in range(5):
        value = ceiling * step / 4
        svg.line(left, y_of(value), width - right, y_of(value))
        svg.text(left - 6, y_of(value) + 4, f"{value:g}", anchor="end", size=10, fill=MUTED)
    if unit:
        svg.text(4, top - 10, unit, size=10, fill=MUTED)
    slot = plot_w / max(len(bars), 1)
    bar_w = max(2.0, min(36.0, slot * 0.7))
    for index, bar in enumerate(bars):
        x = left + slot * index + (slot - bar_w) / 2
        if bar.value is not None:
            y = y_of(bar.value)
            fill = "#dc2626" if bar.alert else PALETTE[0]
            inner = (
                f'<rect class="bar" x="{n(x)}" y="{n(y)}" width="{n(bar_w)}" height="{n(top + plot_h - y)}" '
                f'fill="{fill}" data-value="{bar.value:g}"/>'
            )
            svg.add(svg.link(bar.href, inner, title=bar.tooltip))
        if bar.label:
            svg.text(x + bar_w / 2, height - bottom + 14, bar.label, anchor="middle", size=10, fill=MUTED)
    if threshold is not None:
        y = y_of(threshold)
        svg.line(left, y, width - right, y, stroke="#dc2626", dash="5 4", extra=' class="threshold"')
        if threshold_label:
            svg.text(width - right, y - 4, threshold_label, anchor="end", size=10, fill="#dc2626")
    return svg.render()


def hbar_chart(
    rows: Sequence[tuple[str, float, str | None]],
    *,
    title: str,
    width: float = 360,
    css_class: str = "chart",
    colors: Sequence[str] = PALETTE,
) -> str:
    """Horizontal bars, one per (label, value, link), the value written at the bar's end."""
    label_w = max([text_width(label) for label, _, _ in rows] + [40]) + 12
    row_h, top = 24, 28
    height = top + row_h * len(rows) + 8
    svg = Svg(width, height, title=title, css_class=css_class)
    svg.text(0, 16, title, weight="600", size=13)
    ceiling = max([value for _, value, _ in rows] + [1])
    plot_w = width - label_w - 48
    for index, (label, value, href) in enumerate(rows):
        y = top + row_h * index
        svg.text(label_w - 8, y + 15, label, anchor="end")
        w = plot_w * value / ceiling
        inner = (
            f'<rect class="bar" x="{n(label_w)}" y="{n(y + 4)}" width="{n(max(w, 1))}" height="{row_h - 8}" '
            f'fill="{colors[index % len(colors)]}"/>'
            f'<text x="{n(label_w + w + 6)}" y="{n(y + 15)}" fill="{INK}" class="value">{value:g}</text>'
        )
        svg.add(svg.link(href, inner, title=f"{label}: {value:g}"))
    return svg.render()


def line_chart(
    series: dict[str, Sequence[tuple[float, float]]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    log_x: bool = False,
    width: float = 720,
    height: float = 320,
) -> str:
    """Lines with points, a legend on the right; x on a log scale if asked (rows: 10,000 to 1,000,000)."""
    legend_w = max([text_width(name, 11) for name in series] + [0]) + 30
    left, right, top, bottom = 52, 16 + legend_w, 30, 40
    svg = Svg(width, height, title=title)
    svg.text(left, 18, title, weight="600", size=13)
    xs = [x for points in series.values() for x, _ in points]
    ys = [y for points in series.values() for _, y in points]
    if not xs:
        return svg.render()
    fx = (lambda x: math.log10(x)) if log_x else (lambda x: x)
    lo, hi = fx(min(xs)), fx(max(xs))
    hi = hi if hi > lo else lo + 1
    ceiling = nice_ceiling(max(ys))
    plot_w, plot_h = width - left - right, height - top - bottom

    def at(x, y):
        return left + plot_w * (fx(x) - lo) / (hi - lo), top + plot_h - plot_h * y / ceiling

    for step in range(5):
        value = ceiling * step / 4
        _, y = at(min(xs), value)
        svg.line(left, y, left + plot_w, y)
        svg.text(left - 6, y + 4, f"{value:g}", anchor="end", size=10, fill=MUTED)
    for x in sorted(set(xs)):
        px, _ = at(x, 0)
        svg.line(px, top, px, top + plot_h, stroke=GRID, dash="2 3")
        svg.text(px, top + plot_h + 14, f"{x:,.0f}", anchor="middle", size=10, fill=MUTED)
    svg.text(left + plot_w / 2, height - 6, x_label, anchor="middle", size=11, fill=MUTED)
    svg.text(
        12,
        top + plot_h / 2,
        y_label,
        anchor="middle",
        size=11,
        fill=MUTED,
        extra=f' transform="rotate(-90 12 {n(top + plot_h / 2)})"',
    )
    for index, (name, points) in enumerate(series.items()):
        color = PALETTE[index % len(PALETTE)]
        coords = [at(x, y) for x, y in sorted(points)]
        path = " ".join(f"{'M' if i == 0 else 'L'}{n(x)},{n(y)}" for i, (x, y) in enumerate(coords))
        svg.add(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in coords:
            svg.add(f'<circle cx="{n(x)}" cy="{n(y)}" r="3" fill="{color}"/>')
        ly = top + 8 + index * 18
        svg.line(width - legend_w, ly, width - legend_w + 18, ly, stroke=color, width=2)
        svg.text(width - legend_w + 24, ly + 4, name, size=11)
    return svg.render()


def grouped_hbar_chart(
    groups: Sequence[tuple[str, Sequence[float]]],
    *,
    series: Sequence[str],
    title: str,
    unit: str,
    width: float = 720,
) -> str:
    """Per group (a benchmark scenario) one horizontal bar per series (API, bare), values written."""
    label_w = max([text_width(label) for label, _ in groups] + [40]) + 12
    bar_h, gap, top = 14, 12, 48
    group_h = bar_h * len(series) + gap
    height = top + group_h * len(groups) + 10
    svg = Svg(width, height, title=title)
    svg.text(0, 16, title, weight="600", size=13)
    for index, name in enumerate(series):
        x = label_w + index * 120
        svg.rect(x, 28, 12, 12, fill=PALETTE[index % len(PALETTE)])
        svg.text(x + 18, 38, name, size=11)
    ceiling = nice_ceiling(max([v for _, values in groups for v in values] + [1]))
    plot_w = width - label_w - 70
    svg.text(width - 4, 38, unit, anchor="end", size=10, fill=MUTED)
    for g, (label, values) in enumerate(groups):
        y = top + g * group_h
        svg.text(label_w - 8, y + bar_h * len(series) / 2 + 4, label, anchor="end")
        for s, value in enumerate(values):
            w = plot_w * value / ceiling
            by = y + s * bar_h
            svg.rect(label_w, by + 1, max(w, 1), bar_h - 2, fill=PALETTE[s % len(PALETTE)])
            svg.text(label_w + w + 4, by + bar_h - 3, f"{value:,.0f}", size=10)
    return svg.render()
