"""Charts as self-contained SVG strings: pure functions, no assets, no JavaScript. Line charts here,
with the SVG helpers every chart shares; bar charts with error bars in labeling.core.bar_charts.

The tree is built with ElementTree, so every label is escaped and the output is well-formed XML
whatever the series are called. The plot rectangle depends only on width and height (see plot_area),
so that a test can say where a point must land; the legend sits below it, every label in full (a label
too long for one line wraps onto the next), and the canvas grows by the rows the legend takes. The
root carries the SVG namespace, so the string can be inlined in a page or served as an .svg file alike.
"""
import math
import re
import xml.etree.ElementTree as ET

SVG_NS = "http://www.w3.org/2000/svg"
# Okabe-Ito: told apart under the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
MARGIN_LEFT, MARGIN_TOP, MARGIN_RIGHT, MARGIN_BOTTOM = 64, 40, 24, 48
# No font metrics here: a 12 px sans-serif character is taken as 7.5 px wide, more than the average
# (about 6.6 px), so that an estimated layout errs towards room to spare.
CHAR_WIDTH, LEGEND_ROW, LEGEND_SYMBOL, LEGEND_GAP = 7.5, 18, 26, 18
CATEGORY_CHARS = 20
RULE_LABELS = {"prm": "PRM (max score)", "last": "Last step (ORM-like)", "majority": "Majority vote",
               "oracle": "Oracle (pass@N)", "orm": "ORM (max score)", "weighted_majority": "PRM-weighted majority"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # not allowed in XML 1.0, even escaped


def plot_area(width, height):
    """(left, top, right, bottom) of the plotting rectangle, in pixels; the legend sits below `height`."""
    return MARGIN_LEFT, MARGIN_TOP, width - MARGIN_RIGHT, height - MARGIN_BOTTOM


def nice_ticks(lo, hi, target=5, *, expand=True, integer=False):
    """Round tick values (1, 2, 2.5 or 5 times a power of ten apart) covering [lo, hi].

    With expand the ticks reach past the data to the next round value, else they stay inside. With
    integer they are whole numbers at least 1 apart (rounds, counts).
    """
    raw = (hi - lo) / target
    power = 10 ** math.floor(math.log10(raw))
    multipliers = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    step = next(m * power for m in multipliers if m * power >= raw * 0.999)
    if integer:
        step = max(1, round(step))
    eps = 1e-9 if expand else -1e-9  # a value within rounding error of a tick is on it
    first = (math.floor if expand else math.ceil)(lo / step + eps)
    last = (math.ceil if expand else math.floor)(hi / step - eps)
    if integer:
        return [i * step for i in range(first, last + 1)]
    decimals = max(0, -math.floor(math.log10(step)) + 1)
    return [round(i * step, decimals) for i in range(first, last + 1)]


def _fmt(value):
    if value == int(value) and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.4g}"


def _num(value):
    return f"{value:.2f}"


def _clean(text):
    return _CONTROL.sub("", str(text))


def _text(parent, x, y, text, **attrs):
    node = ET.SubElement(parent, "text", {"x": _num(x), "y": _num(y), **attrs})
    node.text = _clean(text)
    return node


def _title(parent, text):
    ET.SubElement(parent, "title").text = _clean(text)


def _short(label, chars=CATEGORY_CHARS):
    return label if len(label) <= chars else label[:chars - 1] + "\u2026"


def _wrap(label, chars):
    """The label's words in lines of at most `chars` characters (a longer word keeps a line of its own)."""
    lines = []
    for word in label.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= chars:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


def _canvas(width, height, title, x_label, y_label):
    svg = ET.Element("svg", {"xmlns": SVG_NS, "width": str(width), "height": str(height),
                             "viewBox": f"0 0 {width} {height}", "role": "img",
                             "font-family": "sans-serif", "font-size": "12"})
    _title(svg, title)
    ET.SubElement(svg, "rect", {"class": "background", "width": str(width), "height": str(height),
                                "fill": "#ffffff"})
    left, top, right, bottom = plot_area(width, height)
    _text(svg, (left + right) / 2, 22, title, **{"text-anchor": "middle", "font-size": "15"})
    _text(svg, (left + right) / 2, height - 10, x_label, **{"text-anchor": "middle"})
    _text(svg, 16, (top + bottom) / 2, y_label,
          **{"text-anchor": "middle", "transform": f"rotate(-90 16 {_num((top + bottom) / 2)})"})
    return svg


def _y_axis(svg, ticks, to_y, width, height):
    left, top, right, bottom = plot_area(width, height)
    for tick in ticks:
        y = to_y(tick)
        ET.SubElement(svg, "line", {"x1": _num(left), "x2": _num(right), "y1": _num(y), "y2": _num(y),
                                    "stroke": "#e5e5e5"})
        _text(svg, left - 6, y + 4, _fmt(tick), **{"text-anchor": "end"})
    ET.SubElement(svg, "line", {"x1": _num(left), "x2": _num(left), "y1": _num(top), "y2": _num(bottom),
                                "stroke": "#333333"})
    ET.SubElement(svg, "line", {"x1": _num(left), "x2": _num(right), "y1": _num(bottom), "y2": _num(bottom),
                                "stroke": "#333333"})


def _legend(svg, labels, width, height, symbol="line"):
    """Legend items flowed in rows below the chart, each label whole; then the canvas grows to hold them."""
    right = width - MARGIN_RIGHT
    chars = max(8, int((right - MARGIN_LEFT - LEGEND_SYMBOL) / CHAR_WIDTH))
    x, row, rows_here = MARGIN_LEFT, 0, 1
    for i, label in enumerate(labels):
        lines = _wrap(_clean(label), chars)
        item_width = LEGEND_SYMBOL + CHAR_WIDTH * max(len(line) for line in lines)
        if x > MARGIN_LEFT and x + item_width > right:
            x, row, rows_here = MARGIN_LEFT, row + rows_here, 1
        y = height + LEGEND_ROW * row + LEGEND_ROW / 2
        color = PALETTE[i % len(PALETTE)]
        item = ET.SubElement(svg, "g", {"class": "legend"})
        _title(item, label)
        if symbol == "line":
            ET.SubElement(item, "line", {"x1": _num(x), "x2": _num(x + 20), "y1": _num(y), "y2": _num(y),
                                         "stroke": color, "stroke-width": "2"})
        else:
            ET.SubElement(item, "rect", {"x": _num(x + 4), "y": _num(y - 6), "width": "12", "height": "12",
                                         "fill": color})
        node = _text(item, x + LEGEND_SYMBOL, y + 4, lines[0])
        for line in lines[1:]:
            ET.SubElement(node, "tspan", {"x": _num(x + LEGEND_SYMBOL), "dy": str(LEGEND_ROW)}).text = line
        rows_here = max(rows_here, len(lines))
        x += item_width + LEGEND_GAP
    total = height + (LEGEND_ROW * (row + rows_here) + 8 if labels else 0)
    svg.set("height", str(total))
    svg.set("viewBox", f"0 0 {width} {total}")
    svg.find("rect").set("height", str(total))


def _domain(values, padding):
    lo, hi = min(values), max(values)
    if lo == hi:
        lo, hi = lo - padding(lo), hi + padding(hi)
    return lo, hi


def _check_range(y_range):
    if y_range is not None and not y_range[0] < y_range[1]:
        raise ValueError("y_range must be (low, high) with low < high")


def line_chart_svg(series, *, title, x_label, y_label, width=640, height=360, y_range=None,
                   log_x=False, integer_x=None) -> str:
    """One polyline with round markers per series, points drawn in x order; None y values are skipped.

    `series` maps a label to (x, y) points. The y axis runs over y_range when given (points outside it
    are drawn outside), else over round ticks around the data. With log_x the x axis is logarithmic
    (x must be > 0) and runs exactly over the data; its ticks are the x values themselves when there
    are at most 12 distinct ones (the N of a best-of-N chart), else 1-2-5 steps or powers of ten.
    With integer_x (by default: when every x is a whole number) the x ticks are whole numbers.
    """
    points = {label: sorted((float(x), float(y)) for x, y in pts if y is not None)
              for label, pts in series.items()}
    xs = [x for pts in points.values() for x, _ in pts]
    ys = [y for pts in points.values() for _, y in pts]
    if not all(math.isfinite(v) for v in xs + ys):
        raise ValueError("chart values must be finite")
    if log_x and any(x <= 0 for x in xs):
        raise ValueError("a logarithmic x axis needs x > 0")
    _check_range(y_range)
    left, top, right, bottom = plot_area(width, height)

    if log_x:
        fx = math.log10
        x_lo, x_hi = _domain([fx(x) for x in xs] or [0.0], lambda v: 0.5)
        x_ticks = _log_ticks(xs, x_lo, x_hi)
    else:
        fx = float
        if integer_x is None:
            integer_x = bool(xs) and all(x == int(x) for x in xs)
        pad = (lambda v: 1.0) if integer_x else (lambda v: abs(v) * 0.1 or 1.0)
        x_ticks = nice_ticks(*_domain(xs or [0.0, 1.0], pad), integer=integer_x)
        x_lo, x_hi = x_ticks[0], x_ticks[-1]
    if y_range is not None:
        y_lo, y_hi = y_range
        y_ticks = nice_ticks(y_lo, y_hi, expand=False)
    else:
        y_ticks = nice_ticks(*_domain(ys or [0.0, 1.0], lambda v: abs(v) * 0.1 or 1.0))
        y_lo, y_hi = y_ticks[0], y_ticks[-1]

    def to_x(x):
        return left + (fx(x) - x_lo) / (x_hi - x_lo) * (right - left)

    def to_y(y):
        return bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top)

    svg = _canvas(width, height, title, x_label, y_label)
    _y_axis(svg, y_ticks, to_y, width, height)
    for tick in x_ticks:
        x = to_x(tick)
        ET.SubElement(svg, "line", {"x1": _num(x), "x2": _num(x), "y1": _num(bottom), "y2": _num(bottom + 4),
                                    "stroke": "#333333"})
        _text(svg, x, bottom + 17, _fmt(tick), **{"text-anchor": "middle", "class": "x-tick"})
    for i, (label, pts) in enumerate(points.items()):
        if not pts:
            continue
        color = PALETTE[i % len(PALETTE)]
        group = ET.SubElement(svg, "g", {"class": "series", "data-series": _clean(label)})
        coordinates = " ".join(f"{_num(to_x(x))},{_num(to_y(y))}" for x, y in pts)
        ET.SubElement(group, "polyline", {"points": coordinates, "fill": "none", "stroke": color,
                                          "stroke-width": "2"})
        for x, y in pts:
            marker = ET.SubElement(group, "circle", {"cx": _num(to_x(x)), "cy": _num(to_y(y)), "r": "3",
                                                     "fill": color})
            _title(marker, f"{label}: ({_fmt(x)}, {_fmt(y)})")
    if not xs:
        _no_data(svg, width, height)
    _legend(svg, [label if pts else f"{label} (no data)" for label, pts in points.items()], width, height)
    return ET.tostring(svg, encoding="unicode")


def _no_data(svg, width, height):
    left, top, right, bottom = plot_area(width, height)
    _text(svg, (left + right) / 2, (top + bottom) / 2, "No data",
          **{"text-anchor": "middle", "fill": "#777777"})


def _log_ticks(xs, lo, hi):
    distinct = sorted(set(xs))
    if 0 < len(distinct) <= 12:
        return distinct
    for multipliers in ((1, 2, 5), (1,)):
        ticks = [m * 10 ** e for e in range(math.floor(lo), math.ceil(hi) + 1) for m in multipliers
                 if lo - 1e-9 <= math.log10(m * 10 ** e) <= hi + 1e-9]
        if len(ticks) <= 10:
            return ticks
    return ticks


def best_of_n_svg(results, *, title="Best-of-N", width=640, height=360) -> str:
    """The chart of evaluation.best_of_n (or best_of_n_exact): accuracy against N, one line per rule."""
    series = {RULE_LABELS.get(rule, rule): points for rule, points in results.items()}
    ns = {n for points in results.values() for n, _ in points}
    log_x = len(ns) > 2 and max(ns) / min(ns) >= 8
    return line_chart_svg(series, title=title, x_label="N (candidates per problem)",
                          y_label="Problems solved", width=width, height=height, log_x=log_x)
