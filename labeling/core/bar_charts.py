"""Grouped bar charts with error bars and notes, as SVG strings (the layout of labeling.core.charts).

A bar's interval is drawn as a vertical line with caps and keeps its values in its title, so a reader
hovering a bar sees the figure and its 95% interval; a None value leaves its slot empty and says n/a.
"""
import math
import xml.etree.ElementTree as ET

from labeling.core.charts import (PALETTE, _canvas, _check_range, _clean, _domain, _fmt, _legend, _no_data, _num,
                                  _short, _text, _title, _y_axis, nice_ticks, plot_area)


def _error_bar(parent, x, low_y, high_y, title):
    """A vertical line from the interval's high to its low end, with caps; `data-*` keep its values."""
    bar = ET.SubElement(parent, "g", {"class": "error-bar"})
    _title(bar, title)
    ET.SubElement(bar, "line", {"class": "interval", "x1": _num(x), "x2": _num(x), "y1": _num(high_y),
                                "y2": _num(low_y), "stroke": "#222222", "stroke-width": "1.5"})
    for y in (high_y, low_y):
        ET.SubElement(bar, "line", {"x1": _num(x - 4), "x2": _num(x + 4), "y1": _num(y), "y2": _num(y),
                                    "stroke": "#222222", "stroke-width": "1.5"})


def bar_chart_svg(groups, *, title, y_label, x_label="", width=640, height=360, y_range=None,
                  intervals=None, notes=None) -> str:
    """Grouped bars: {category: {series: value}}; one bar per series within each category.

    Bars rise from 0 (the axis always includes it). A None value leaves its slot empty and says n/a.
    `intervals` ({category: {series: (low, high)}}) draws an error bar on a bar; `notes` ({category:
    {series: text}}, say "n=12") writes a small text above it.
    """
    intervals, notes = intervals or {}, notes or {}
    names = list(dict.fromkeys(name for values in groups.values() for name in values))
    values = [v for per in groups.values() for v in per.values() if v is not None]
    ends = [end for per in intervals.values() for pair in per.values() if pair for end in pair]
    if not all(math.isfinite(v) for v in values + ends):
        raise ValueError("chart values must be finite")
    _check_range(y_range)
    left, top, right, bottom = plot_area(width, height)
    if y_range is not None:
        y_lo, y_hi = y_range
        y_ticks = nice_ticks(y_lo, y_hi, expand=False)
    else:
        y_ticks = nice_ticks(*_domain([0.0] + values + ends, lambda v: 1.0))
        y_lo, y_hi = y_ticks[0], y_ticks[-1]

    def to_y(y):
        return bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top)

    svg = _canvas(width, height, title, x_label, y_label)
    _y_axis(svg, y_ticks, to_y, width, height)
    slot = (right - left) / max(len(groups), 1)
    bar = slot * 0.8 / max(len(names), 1)
    base = to_y(min(max(0.0, y_lo), y_hi))
    for g, (category, per) in enumerate(groups.items()):
        _text(svg, left + slot * (g + 0.5), bottom + 17, _short(str(category)),
              **{"text-anchor": "middle", "class": "category"})
        for i, name in enumerate(names):
            x = left + slot * (g + 0.1) + bar * i
            value = per.get(name)
            if value is None:
                _text(svg, x + bar / 2, base - 4, "n/a", **{"text-anchor": "middle", "font-size": "10"})
                continue
            y = to_y(value)
            rect = ET.SubElement(svg, "rect", {"class": "bar", "x": _num(x), "y": _num(min(y, base)),
                                               "width": _num(bar), "height": _num(abs(base - y)),
                                               "fill": PALETTE[i % len(PALETTE)],
                                               "data-category": _clean(category), "data-series": _clean(name)})
            _title(rect, f"{category} / {name}: {_fmt(value)}")
            top_y = min(y, base)
            interval = intervals.get(category, {}).get(name)
            if interval:
                low, high = interval
                _error_bar(svg, x + bar / 2, to_y(low), to_y(high),
                           f"{category} / {name}: 95% interval {_fmt(low)} to {_fmt(high)}")
                top_y = min(top_y, to_y(high))
            note = notes.get(category, {}).get(name)
            if note:
                _text(svg, x + bar / 2, top_y - 5, note, **{"text-anchor": "middle", "font-size": "10",
                                                            "class": "note"})
    if not values:
        _no_data(svg, width, height)
    _legend(svg, names, width, height, symbol="box")
    return ET.tostring(svg, encoding="unicode")
