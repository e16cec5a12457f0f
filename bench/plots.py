"""PNG plots for the report, drawn with Pillow's ImageDraw (no plotting library needed).

Each function writes one PNG and returns its path. The charts are deliberately plain: axes with "nice" ticks,
points, lines, bars, a dashed goal line and a legend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 900, 560
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 90, 230, 50, 70
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
GOAL_COLOUR = "#2ca02c"
BAR_LEFT = 170  # left margin of bar charts: room for the photo names


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size)


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Return round tick values covering ``lo..hi`` (about ``count`` of them)."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        if value >= lo - step * 1e-9:
            ticks.append(round(value, 10))
        value += step
    return ticks


@dataclass
class Axes:
    """A chart area mapping data coordinates to pixels."""

    x_lo: float
    x_hi: float
    y_lo: float
    y_hi: float
    left: int = MARGIN_LEFT
    height: int = HEIGHT

    def px(self, x: float, y: float) -> tuple[float, float]:
        """Return the pixel position of data point (x, y)."""
        width = WIDTH - self.left - MARGIN_RIGHT
        height = self.height - MARGIN_TOP - MARGIN_BOTTOM
        fx = (x - self.x_lo) / (self.x_hi - self.x_lo or 1)
        fy = (y - self.y_lo) / (self.y_hi - self.y_lo or 1)
        return self.left + fx * width, self.height - MARGIN_BOTTOM - fy * height


class Chart:
    """One PNG chart: create, add series, save."""

    def __init__(
        self,
        title: str,
        x_label: str,
        y_label: str,
        axes: Axes,
        x_fmt: str = "{:g}",
        y_fmt: str | None = "{:g}",
    ):
        self.image = Image.new("RGB", (WIDTH, axes.height), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.axes = axes
        self.legend: list[tuple[str, str, str]] = []
        self._frame(title, x_label, y_label, x_fmt, y_fmt)

    def _frame(self, title: str, x_label: str, y_label: str, x_fmt: str, y_fmt: str | None) -> None:
        """Draw title, grid, tick labels (no y ticks when ``y_fmt`` is None), the frame and axis labels."""
        d, a = self.draw, self.axes
        left, top = a.left, MARGIN_TOP
        height = self.axes.height
        right, bottom = WIDTH - MARGIN_RIGHT, height - MARGIN_BOTTOM
        d.text((WIDTH / 2, 18), title, fill="black", font=_font(18), anchor="mm")
        for x in nice_ticks(a.x_lo, a.x_hi):
            px, _ = a.px(x, a.y_lo)
            d.line([(px, top), (px, bottom)], fill="#e6e6e6")
            d.text((px, bottom + 6), x_fmt.format(x), fill="black", font=_font(12), anchor="mt")
        for y in nice_ticks(a.y_lo, a.y_hi) if y_fmt is not None else []:
            _, py = a.px(a.x_lo, y)
            d.line([(left, py), (right, py)], fill="#e6e6e6")
            d.text((left - 6, py), y_fmt.format(y), fill="black", font=_font(12), anchor="rm")
        d.rectangle([left, top, right, bottom], outline="black")
        d.text(((left + right) / 2, height - 22), x_label, fill="black", font=_font(14), anchor="mm")
        label = Image.new("RGBA", (height, 24), (255, 255, 255, 0))
        ImageDraw.Draw(label).text(
            (height / 2 - MARGIN_BOTTOM / 2, 12), y_label, fill="black", font=_font(14), anchor="mm"
        )
        rotated = label.rotate(90, expand=True)
        self.image.paste(rotated, (8, 0), rotated)

    def line(self, points: Sequence[tuple[float, float]], colour: str, label: str, labels: Sequence[str] = ()) -> None:
        """Draw a polyline with dots; ``labels`` (optional) are written beside the dots."""
        pixels = [self.axes.px(x, y) for x, y in points]
        if len(pixels) > 1:
            self.draw.line(pixels, fill=colour, width=2)
        for i, (px, py) in enumerate(pixels):
            self.draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
            if i < len(labels):
                self.draw.text((px + 5, py - 5), labels[i], fill=colour, font=_font(10), anchor="lb")
        self.legend.append((label, colour, "line"))

    def points(self, points: Sequence[tuple[float, float]], colour: str, label: str, size: int = 6) -> None:
        """Draw markers (squares) at ``points``."""
        for x, y in points:
            px, py = self.axes.px(x, y)
            self.draw.rectangle([px - size / 2, py - size / 2, px + size / 2, py + size / 2], fill=colour)
        self.legend.append((label, colour, "point"))

    def star(self, x: float, y: float, colour: str, label: str) -> None:
        """Draw a large star marker (our default)."""
        px, py = self.axes.px(x, y)
        outer, inner = 11, 4.5
        pts = []
        for i in range(10):
            r = outer if i % 2 == 0 else inner
            angle = -math.pi / 2 + i * math.pi / 5
            pts.append((px + r * math.cos(angle), py + r * math.sin(angle)))
        self.draw.polygon(pts, fill=colour, outline="black")
        self.legend.append((label, colour, "point"))

    def hgoal(self, y: float, label: str) -> None:
        """Draw a dashed horizontal goal line at ``y``."""
        self._dashed([self.axes.px(self.axes.x_lo, y), self.axes.px(self.axes.x_hi, y)])
        self.legend.append((label, GOAL_COLOUR, "line"))

    def vgoal(self, x: float, label: str) -> None:
        """Draw a dashed vertical goal line at ``x``."""
        self._dashed([self.axes.px(x, self.axes.y_lo), self.axes.px(x, self.axes.y_hi)])
        self.legend.append((label, GOAL_COLOUR, "line"))

    def _dashed(self, ends: list[tuple[float, float]]) -> None:
        (x0, y0), (x1, y1) = ends
        length = math.hypot(x1 - x0, y1 - y0)
        steps = max(1, int(length // 8))
        for i in range(0, steps, 2):
            a, b = i / steps, min(1.0, (i + 1) / steps)
            self.draw.line(
                [(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)],
                fill=GOAL_COLOUR,
                width=2,
            )

    def hbars(self, names: Sequence[str], series: Sequence[tuple[str, str, Sequence[float]]]) -> None:
        """Draw grouped horizontal bars: one row per name, one bar per series (label, colour, values)."""
        rows = len(names)
        band = (self.axes.height - MARGIN_TOP - MARGIN_BOTTOM) / max(1, rows)
        bar = band * 0.8 / max(1, len(series))
        for r, name in enumerate(names):
            top = MARGIN_TOP + r * band + band * 0.1
            self.draw.text((self.axes.left - 6, top + band * 0.4), name, fill="black", font=_font(11), anchor="rm")
            for s, (_, colour, values) in enumerate(series):
                x0, _ = self.axes.px(self.axes.x_lo, 0)
                x1, _ = self.axes.px(max(self.axes.x_lo, min(self.axes.x_hi, values[r])), 0)
                self.draw.rectangle([x0, top + s * bar, x1, top + (s + 1) * bar - 1], fill=colour)
        for label, colour, _ in series:
            self.legend.append((label, colour, "point"))

    def save(self, path: Path) -> Path:
        """Draw the legend and write the PNG to ``path``."""
        x, y = WIDTH - MARGIN_RIGHT + 14, MARGIN_TOP + 4
        for label, colour, kind in self.legend:
            if kind == "line":
                self.draw.line([(x, y + 7), (x + 18, y + 7)], fill=colour, width=3)
            else:
                self.draw.rectangle([x + 5, y + 2, x + 13, y + 10], fill=colour)
            self.draw.text((x + 24, y + 7), label, fill="black", font=_font(12), anchor="lm")
            y += 20
        path.parent.mkdir(parents=True, exist_ok=True)
        self.image.save(path, optimize=True)
        return path


def size_vs_ssim(
    path: Path,
    curve: Sequence[dict[str, float]],
    candidates: Sequence[dict[str, object]],
    ours: tuple[float, float],
    seed: tuple[float, float],
) -> Path:
    """Plot corpus output/input bytes against median luma SSIM: baseline curve, candidates, our default, seed."""
    xs = [c["median_ssim"] for c in curve] + [float(c["median_ssim"]) for c in candidates] + [ours[0], seed[0]]
    ys = [c["output_input_ratio"] for c in curve] + [float(c["output_input_ratio"]) for c in candidates]
    ys += [ours[1], seed[1]]
    axes = Axes(max(0.7, min(xs) - 0.01), 1.0, 0.0, max(ys) * 1.08)
    chart = Chart(
        "Bytes vs SSIM on the corpus (lower right is better)",
        "median luma SSIM vs source",
        "output bytes / input bytes",
        axes,
        x_fmt="{:.2f}",
        y_fmt="{:.2f}",
    )
    chart.line(
        [(c["median_ssim"], c["output_input_ratio"]) for c in curve],
        "#7f7f7f",
        "baseline (libjpeg-turbo)",
        labels=[f"q{int(c['quality'])}" for c in curve],
    )
    names = sorted({str(c["encoder"]) for c in candidates})
    for i, name in enumerate(names):
        pts = [
            (float(c["median_ssim"]), float(c["output_input_ratio"]))
            for c in candidates
            if c["encoder"] == name and str(c["quality"]).startswith("q")
        ]
        if pts:
            chart.points(pts, PALETTE[i % len(PALETTE)], name)
    chart.points([seed], "black", "seed (q20)", size=9)
    chart.star(ours[0], ours[1], "#ffd700", "our default")
    return chart.save(path)


def ssim_per_image(path: Path, names: Sequence[str], ours: Sequence[float], seed: Sequence[float]) -> Path:
    """Plot each photo's luma SSIM (ours and the seed's) as bars, with the 0.95 goal line."""
    lo = max(0.0, math.floor(min([*ours, *seed, 0.95]) * 20) / 20 - 0.05)
    chart = Chart("Luma SSIM per photo", "SSIM vs source", "", Axes(lo, 1.0, 0, 1, BAR_LEFT), "{:.2f}", None)
    chart.hbars(names, [("our default", PALETTE[0], ours), ("seed (q20)", "#aaaaaa", seed)])
    chart.vgoal(0.95, "goal: min >= 0.95")
    return chart.save(path)


def overhead_per_image(
    path: Path,
    names: Sequence[str],
    ratios: Sequence[float],
    goal: float,
    ratios_with_search: Sequence[float] | None = None,
) -> Path:
    """Plot each photo's compress() time over the bare references' (strict, and with the search), with the goal."""
    series = [("vs decode + 1 encode", PALETTE[3], ratios)]
    if ratios_with_search:
        series.append(("vs decode + search + encode", PALETTE[4], ratios_with_search))
    hi = max([*ratios, *(ratios_with_search or []), goal]) * 1.1
    chart = Chart("compress() time / bare reference", "time ratio", "", Axes(0.0, hi, 0, 1, BAR_LEFT), "{:.2f}", None)
    chart.hbars(names, series)
    chart.vgoal(goal, f"goal: median <= {goal}")
    return chart.save(path)


def e2e_latency(path: Path, series: Sequence[tuple[str, Sequence[float]]], goal_ms: float) -> Path:
    """Plot the warm upload-to-destination latency samples of each size, with the 12 MP p50 goal line."""
    values = [v for _, samples in series for v in samples] or [goal_ms]
    hi = max([*values, goal_ms]) * 1.15
    chart = Chart(
        "Upload to object-in-destination (warm)",
        "sample",
        "ms",
        Axes(0, max(2, *(len(s) for _, s in series)) + 1, 0, hi),
    )
    for i, (label, samples) in enumerate(series):
        chart.line([(j + 1, v) for j, v in enumerate(samples)], PALETTE[i], label)
    chart.hgoal(goal_ms, f"goal: 12 MP p50 <= {goal_ms:g} ms")
    return chart.save(path)


def _bar_height(rows: int, per_row: int) -> int:
    """Height of a bar chart with ``rows`` rows of ``per_row`` pixels (never below the standard height)."""
    return max(HEIGHT, MARGIN_TOP + MARGIN_BOTTOM + rows * per_row)


def ssimulacra2_per_image(
    path: Path, names: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], goal: float
) -> Path:
    """Plot each photo's SSIMULACRA2 for our default and the peers' defaults, with the goal line (min >= goal)."""
    values = [v for _, vals in series for v in vals]
    lo = max(0.0, math.floor(min([*values, goal]) / 10) * 10 - 10)
    axes = Axes(lo, 100.0, 0, 1, BAR_LEFT, _bar_height(len(names), 8 + 6 * len(series)))
    chart = Chart(
        "SSIMULACRA2 per photo (70 high quality, 90 visually lossless)", "SSIMULACRA2", "", axes, "{:g}", None
    )
    chart.hbars(names, [(label, PALETTE[i], vals) for i, (label, vals) in enumerate(series)])
    chart.vgoal(goal, f"goal: min >= {goal:g}")
    return chart.save(path)


def ratio_per_image(
    path: Path, title: str, names: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], goal: float
) -> Path:
    """Plot each photo's bytes ratio (ours / a peer's at equal quality) per peer, with the goal and parity lines."""
    values = [v for _, vals in series for v in vals]
    hi = max([*values, 1.0]) * 1.05
    axes = Axes(0.0, hi, 0, 1, BAR_LEFT, _bar_height(len(names), 8 + 6 * len(series)))
    chart = Chart(title, "our bytes / peer's bytes at equal quality (lower is better)", "", axes, "{:.2f}", None)
    chart.hbars(names, [(label, PALETTE[i], vals) for i, (label, vals) in enumerate(series)])
    chart.vgoal(goal, f"goal: median <= {goal:g}")
    return chart.save(path)


def peer_times(path: Path, sizes: Sequence[str], ours: Sequence[float], theirs: Sequence[float]) -> Path:
    """Plot compress() and libvips + mozjpeg times per image size."""
    hi = max([*ours, *theirs, 1.0]) * 1.1
    chart = Chart("Time per image: ours vs libvips + mozjpeg", "ms (one thread)", "", Axes(0, hi, 0, 1, BAR_LEFT))
    chart.hbars(sizes, [("compress() defaults", PALETTE[0], ours), ("libvips + mozjpeg (sharp)", PALETTE[1], theirs)])
    return chart.save(path)
