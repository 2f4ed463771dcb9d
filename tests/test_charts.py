"""SVG charts (labeling.core.charts): well-formed, points where the layout says, labels escaped."""
import xml.etree.ElementTree as ET

import pytest

from labeling.core import charts
from labeling.core import evaluation
from labeling.core.bar_charts import bar_chart_svg
from labeling.core.charts import best_of_n_svg, line_chart_svg

NS = {"svg": charts.SVG_NS}
# The default 640 x 360 canvas: plot area from x 64 to 640 - 24 = 616, y 40 to 360 - 48 = 312; the legend below.
LEFT, TOP, RIGHT, BOTTOM = 64, 40, 616, 312


def render(series, **kwargs):
    return line_chart_svg(series, **{"title": "t", "x_label": "x", "y_label": "y", **kwargs})


def parse(svg):
    root = ET.fromstring(svg)
    assert root.tag == f"{{{charts.SVG_NS}}}svg"
    return root


def polylines(root):
    return [[tuple(map(float, p.split(","))) for p in line.get("points").split()]
            for line in root.iterfind(".//svg:polyline", NS)]


def texts(root):
    return [node.text for node in root.iter(f"{{{charts.SVG_NS}}}text")]


def test_the_layout_is_the_one_these_tests_assume():
    assert charts.plot_area(640, 360) == (LEFT, TOP, RIGHT, BOTTOM)


def test_it_maps_points_onto_the_plot_area():
    root = parse(render({"a": [(10, 1), (0, 0)], "b": [(5, 0.5)]}))
    # x ticks 0, 2, ..., 10 and y ticks 0, 0.2, ..., 1 span the data exactly, so:
    # (0, 0) -> (64, 312); (10, 1) -> (616, 40); (5, 0.5) -> (64 + 552/2, 312 - 272/2) = (340, 176).
    assert polylines(root) == [[(64, 312), (616, 40)], [(340, 176)]]  # drawn in x order
    assert len(root.findall(".//svg:circle", NS)) == 3
    assert {"0", "10", "0.2", "1"} <= set(texts(root))


def test_y_range_fixes_the_axis():
    root = parse(render({"a": [(0, 0.5), (1, 1.5)]}, y_range=(0, 2)))
    # y 0.5 -> 312 - 0.25 * 272 = 244; y 1.5 -> 312 - 0.75 * 272 = 108.
    assert polylines(root) == [[(64, 244), (616, 108)]]


def test_a_log_x_axis():
    root = parse(render({"a": [(1, 0), (10, 0.5), (100, 1)]}, log_x=True))
    # log10 x runs over [0, 2]: x = 10 lands half way, 64 + 276 = 340.
    assert polylines(root) == [[(64, 312), (340, 176), (616, 40)]]
    assert {"1", "10", "100"} <= set(texts(root))


def test_it_escapes_labels():
    svg = render({"<v1 & v2>": [(0, 1), (1, 2)]}, title="PRM <b>&</b>", x_label="N > 1", y_label="a < b")
    assert "<b>" not in svg and "&lt;b&gt;&amp;&lt;/b&gt;" in svg
    root = parse(svg)
    assert {"PRM <b>&</b>", "N > 1", "a < b", "<v1 & v2>"} <= set(texts(root))
    assert root.find(".//svg:g[@class='series']", NS).get("data-series") == "<v1 & v2>"


def test_control_characters_cannot_break_the_xml():
    parse(render({"bad\x01name": [(0, 0)]}, title="tab\tand\x0bvertical"))


def test_a_single_point():
    root = parse(render({"only": [(3, 0.5)]}))
    [[(x, y)]] = polylines(root)
    assert LEFT < x < RIGHT and TOP < y < BOTTOM


def test_constant_y_is_a_flat_line_inside_the_plot():
    [line] = polylines(parse(render({"flat": [(0, 0.7), (1, 0.7), (2, 0.7)]})))
    assert len({y for _, y in line}) == 1 and TOP < line[0][1] < BOTTOM
    [line] = polylines(parse(render({"zero": [(0, 0), (1, 0)]})))
    assert TOP < line[0][1] < BOTTOM


def test_empty_series():
    root = parse(render({}))
    assert polylines(root) == [] and "No data" in texts(root)
    root = parse(render({"a": [], "b": [(0, 1), (1, 2)]}))
    assert len(polylines(root)) == 1
    assert "a (no data)" in texts(root) and "b" in texts(root)


def test_none_values_are_skipped():
    assert polylines(parse(render({"a": [(0, 0), (1, None), (2, 1)]}))) == [[(64, 312), (616, 40)]]


@pytest.mark.parametrize("series, kwargs", [
    ({"a": [(0, float("nan"))]}, {}), ({"a": [(0, 1)]}, {"log_x": True}),
    ({"a": [(1, 1)]}, {"y_range": (1, 1)}),
])
def test_it_rejects_what_it_cannot_draw(series, kwargs):
    with pytest.raises(ValueError):
        render(series, **kwargs)


def test_bar_chart():
    svg = bar_chart_svg({"error acc": {"v1": 0.4, "v2": 0.5}, "F1": {"v1": 0.6, "v2": None}},
                        title="ProcessBench <v1 & v2>", y_label="score", y_range=(0, 1))
    root = parse(svg)
    bars = root.findall(".//svg:rect[@class='bar']", NS)
    assert len(bars) == 3 and "n/a" in texts(root)
    # v2 of the first group: 0.5 of 272 px tall, top at 312 - 136 = 176.
    assert (float(bars[1].get("height")), float(bars[1].get("y"))) == (136, 176)
    assert "ProcessBench <v1 & v2>" in texts(root)


def test_best_of_n_chart_end_to_end():
    problems = [[{"score_prm": (i * 7 % 16) / 16, "score_last": (i * 5 % 16) / 16,
                  "answer": str(i % 3 + p % 2), "is_correct": i % 3 == 0} for i in range(16)]
                for p in range(4)]
    results = evaluation.best_of_n(problems, samples=20, seed=0)
    root = parse(best_of_n_svg(results, title="Best-of-N, PRM v2"))
    lines = polylines(root)
    assert len(lines) == len(evaluation.RULES)
    assert all(len(line) == 5 for line in lines)  # N = 1, 2, 4, 8, 16
    assert {"PRM (max score)", "Majority vote", "Oracle (pass@N)", "1", "16"} <= set(texts(root))
    oracle = lines[evaluation.RULES.index("oracle")]
    assert [y for _, y in oracle] == sorted((y for _, y in oracle), reverse=True)  # pass@N never falls
    assert [x for x, _ in oracle] == sorted(x for x, _ in oracle) and oracle[0][0] == LEFT


def legend_labels(root):
    """The visible text of each legend item, its wrapped lines joined by a space."""
    return [" ".join(t.strip() for t in node.itertext()) for node in root.iterfind(".//svg:g[@class='legend']/svg:text", NS)]


def x_ticks(root):
    return [node.text for node in root.iterfind(".//svg:text[@class='x-tick']", NS)]


def test_legend_labels_are_whole_below_the_plot_and_the_canvas_grows_to_hold_them():
    labels = ["ProcessBench F1 (n=1200 held-out solutions, threshold 0.5)", "Step AUROC",
              "Best-of-N PRM @ max (problems solved with the highest-scoring candidate)"]
    root = parse(render({label: [(1, 0.5), (2, 0.6)] for label in labels}))
    assert legend_labels(root) == labels
    assert "\u2026" not in "".join(root.itertext())
    height = float(root.get("height"))
    assert height > 360 and root.get("viewBox") == f"0 0 640 {root.get('height')}"
    for node in root.iterfind(".//svg:g[@class='legend']/svg:text", NS):
        x, y = float(node.get("x")), float(node.get("y"))
        lines = [node.text] + [t.text for t in node.findall("svg:tspan", NS)]
        assert y > BOTTOM + 17  # below the x tick labels
        assert y + charts.LEGEND_ROW * (len(lines) - 1) < height
        assert x + charts.CHAR_WIDTH * max(map(len, lines)) <= 640 - charts.MARGIN_RIGHT  # estimated extent


def test_a_label_too_long_for_a_line_wraps_at_spaces_and_keeps_every_word():
    label = " ".join(f"word{i}" for i in range(40))
    root = parse(render({label: [(0, 1)]}))
    (node,) = root.iterfind(".//svg:g[@class='legend']/svg:text", NS)
    assert len(node.findall("svg:tspan", NS)) >= 2
    assert legend_labels(root) == [label]


def test_round_numbers_get_whole_ticks():
    assert x_ticks(parse(render({"a": [(1, 0.5), (2, 0.6)]}))) == ["1", "2"]
    assert x_ticks(parse(render({"a": [(3, 0.5)]}))) == ["2", "3", "4"]       # one round: a tick each side
    assert x_ticks(parse(render({"a": [(0, 0.5), (40, 0.6)]}))) == ["0", "10", "20", "30", "40"]
    # fractional x, or integer_x=False, keep the 1-2-2.5-5 steps
    assert x_ticks(parse(render({"a": [(0, 0.5), (1.5, 0.6)]}))) == ["0", "0.5", "1", "1.5"]
    assert x_ticks(parse(render({"a": [(1, 0.5), (2, 0.6)]}, integer_x=False)))[:2] == ["1", "1.2"]


def test_error_bars_span_the_interval_at_the_bar_centre():
    svg = bar_chart_svg({"round 1": {"wrong": 0.5, "control": 0.25}, "round 2": {"wrong": 0.75, "control": None}},
                        title="Error yield", y_label="share", y_range=(0, 1),
                        intervals={"round 1": {"wrong": (0.25, 0.75), "control": (0.0, 0.5)},
                                   "round 2": {"wrong": (0.5, 1.0)}},
                        notes={"round 1": {"wrong": "n=4"}})
    root = parse(svg)
    bars = {(b.get("data-category"), b.get("data-series")): b for b in root.iterfind(".//svg:rect[@class='bar']", NS)}
    lines = root.findall(".//svg:g[@class='error-bar']/svg:line[@class='interval']", NS)
    assert len(bars) == 3 and len(lines) == 3
    expected = {("round 1", "wrong"): (0.25, 0.75), ("round 1", "control"): (0.0, 0.5),
                ("round 2", "wrong"): (0.5, 1.0)}
    for line, (key, (low, high)) in zip(lines, expected.items()):
        bar = bars[key]
        assert float(line.get("x1")) == float(line.get("x2")) == \
            pytest.approx(float(bar.get("x")) + float(bar.get("width")) / 2, abs=0.01)
        # y 0..1 over 272 px: high -> 312 - 272 * high, low -> 312 - 272 * low
        assert (float(line.get("y1")), float(line.get("y2"))) == (312 - 272 * high, 312 - 272 * low)
    assert "n/a" in texts(root) and "n=4" in texts(root)
    assert legend_labels(root) == ["wrong", "control"]


def test_the_bar_axis_reaches_the_top_of_the_intervals():
    root = parse(bar_chart_svg({"a": {"s": 0.5}}, title="t", y_label="y", intervals={"a": {"s": (0.2, 1.3)}}))
    (line,) = root.findall(".//svg:line[@class='interval']", NS)
    assert float(line.get("y1")) >= TOP
