"""Line and bar plots as PNG files: drawn by matplotlib (the Agg backend, chosen inside the functions, never at
import) when it is installed (``pip install 'ganvae[plots]'``), else by :class:`LitePyplot`, a plainer drawing
with Pillow (a core dependency), so ``losses.png`` and the report's plots exist with the core install too."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Sequence

from ganvae.common.files import atomic_write_bytes


def _pyplot():
    """``matplotlib.pyplot``, or :data:`LITE_PYPLOT` (the same calls, drawn with Pillow) when matplotlib is not
    installed."""
    try:
        import matplotlib
    except ImportError:
        return LITE_PYPLOT
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def read_csv_columns(path: str | Path) -> dict[str, list[float]]:
    """Columns of a numeric CSV (``losses.csv``, ``metrics_during_training.csv``) as lists; blank cells are NaN."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    return {k: [float(r[k]) if r[k] else float("nan") for r in rows] for k in rows[0]}


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average, so noisy per-step GAN losses show their trend."""
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def figure_bytes(fig) -> bytes:
    """The figure as PNG bytes (100 dpi); a matplotlib figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    if not isinstance(fig, LiteFigure):
        _pyplot().close(fig)
    return buf.getvalue()


def plot_losses(csv_path: str | Path, out: str | Path, title: str = "losses") -> Path:
    """Per-step losses (light) with their moving average (dark), one panel per loss."""
    plt = _pyplot()
    cols = read_csv_columns(csv_path)
    names = [k for k in cols if k not in ("step", "epoch")]
    fig, axes = plt.subplots(len(names) or 1, 1, figsize=(7, 2.2 * max(1, len(names))), sharex=True, squeeze=False)
    window = max(1, len(cols.get("step", [])) // 50)
    for ax, name in zip(axes[:, 0], names):
        ax.plot(cols["step"], cols[name], alpha=0.3, lw=0.8)
        ax.plot(cols["step"], smooth(cols[name], window), lw=1.5)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    axes[0, 0].set_title(title)
    atomic_write_bytes(out, figure_bytes(fig))
    return Path(out)


# ---------------------------------------------------------------------------------------------------------------
# The light fallback: the few pyplot and Axes calls ganvae's plots make (here and in ganvae.inference.report), kept
# as a record and drawn with Pillow when the figure is saved. Plainer than matplotlib (one small font, no
# anti-aliasing), with the same panels, colours, log axes, markers, bars, dashed lines, legends and labels.

RGB = tuple[int, int, int]
TAB10: list[RGB] = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
                    (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]  # matplotlib's default cycle
NAMED: dict[str, RGB] = {"k": (0, 0, 0), "black": (0, 0, 0), "grey": (128, 128, 128), "gray": (128, 128, 128),
                         **{f"C{i}": c for i, c in enumerate(TAB10)}}
WHITE: RGB = (255, 255, 255)


def _on_white(colour: RGB, alpha: float) -> RGB:
    """``colour`` at opacity ``alpha`` over the white background."""
    return tuple(round(c * alpha + 255 * (1 - alpha)) for c in colour)  # type: ignore[return-value]


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round values (1, 2, 2.5 or 5 times a power of ten apart) covering [lo, hi]."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / n
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9)
    return [k * step for k in range(first, math.floor(hi / step + 1e-9) + 1)]


def _label(value: float) -> str:
    return f"{value:.4g}" if value != 0 else "0"


class LiteAxes:
    """One panel: records ``plot``, ``bar``, ``axhline`` and the labels, scales, grid, ticks and legend calls."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []  # xs, ys, colour, width (points), marker size (points; 0: none)
        self.bars: list[dict[str, Any]] = []  # xs (centres), heights, width (data units), colour
        self.hlines: list[dict[str, Any]] = []  # y, colour, width (points), dashed
        self.xlabel = self.ylabel = self.title = ""
        self.log_y = False
        self.grid_alpha = 0.0  # 0: no grid
        self.legend_on = False
        self.xticks: tuple[list[float], list[str]] | None = None
        self._cycle = 0

    def _colour(self, color: str | None) -> RGB:
        if color is not None:
            return NAMED.get(color, (0, 0, 0))
        self._cycle += 1
        return TAB10[(self._cycle - 1) % len(TAB10)]

    def plot(self, x: Sequence[float], y: Sequence[float], *, alpha: float = 1.0, lw: float = 1.5,
             marker: str | None = None, ms: float = 6.0, label: str | None = None, color: str | None = None,
             **_: Any) -> None:
        colour = _on_white(self._colour(color), alpha)
        self.lines.append(dict(xs=[float(v) for v in x], ys=[float(v) for v in y], colour=colour, width=lw,
                               marker=ms if marker else 0.0, label=label))

    def bar(self, x: Sequence[float], height: Sequence[float], width: float = 0.8, *, label: str | None = None,
            color: str | None = None, **_: Any) -> None:
        self.bars.append(dict(xs=[float(v) for v in x], heights=[float(v) for v in height], width=float(width),
                              colour=self._colour(color), label=label))

    def axhline(self, y: float, *, color: str | None = None, ls: str = "-", lw: float = 1.0,
                label: str | None = None, **_: Any) -> None:
        self.hlines.append(dict(y=float(y), colour=self._colour(color), width=lw, dashed=ls in ("--", "dashed"),
                                label=label))

    def set_xlabel(self, text: str, **_: Any) -> None:
        self.xlabel = text

    def set_ylabel(self, text: str, **_: Any) -> None:
        self.ylabel = text

    def set_title(self, text: str, **_: Any) -> None:
        self.title = text

    def set_yscale(self, scale: str, **_: Any) -> None:
        self.log_y = scale == "log"

    def grid(self, visible: bool = True, *, alpha: float = 1.0, **_: Any) -> None:
        self.grid_alpha = alpha if visible else 0.0

    def legend(self, **_: Any) -> None:
        self.legend_on = True

    def set_xticks(self, ticks: Sequence[float], labels: Sequence[str] | None = None, **_: Any) -> None:
        positions = [float(t) for t in ticks]
        self.xticks = (positions, [str(s) for s in labels] if labels is not None else [_label(t) for t in positions])

    # ------------------------------------------------------------------ drawing
    def x_range(self) -> tuple[float, float] | None:
        xs = [x for line in self.lines for x in line["xs"] if math.isfinite(x)]
        xs += [x + s * b["width"] / 2 for b in self.bars for x in b["xs"] for s in (-1, 1)]
        return (min(xs), max(xs)) if xs else None

    def _y_range(self) -> tuple[float, float]:
        """The panel's y extent on its scale, padded by 5% (bars stand on 0, unpadded)."""
        ys = [y for line in self.lines for y in line["ys"]] + [h["y"] for h in self.hlines]
        ys += [v for b in self.bars for v in (*b["heights"], 0.0)]
        ys = [self._y(y) for y in ys if math.isfinite(y) and (y > 0 or not self.log_y)]
        if not ys:
            return (0.0, 1.0)
        lo, hi = min(ys), max(ys)
        pad = (hi - lo) * 0.05 or 0.5
        return (lo if self.bars and lo == 0 else lo - pad, hi + pad)

    def _y(self, y: float) -> float:
        """``y`` on the panel's scale (log10 on a log axis)."""
        return math.log10(y) if self.log_y else y

    def _y_ticks(self, lo: float, hi: float) -> list[tuple[float, str]]:
        """(position on the panel's scale, label) of each y tick inside [lo, hi]."""
        if not self.log_y:
            ticks = [(t, _label(t)) for t in _nice_ticks(lo, hi)]
        elif math.floor(hi) - math.ceil(lo) >= 1:  # two decades or more: one tick per decade
            ticks = [(float(d), _label(10.0 ** d)) for d in range(math.ceil(lo), math.floor(hi) + 1)]
        else:
            ticks = [(math.log10(t), _label(t)) for t in _nice_ticks(10 ** lo, 10 ** hi) if t > 0]
        return [(t, text) for t, text in ticks if lo <= t <= hi]

    def left_margin(self, draw, font) -> int:
        """Pixels left of the plot area that the y label and the y ticks' labels need."""
        text_h = draw.textbbox((0, 0), "0", font=font)[3]
        tick_w = max([draw.textlength(text, font=font) for _, text in self._y_ticks(*self._y_range())], default=0)
        return 4 + (text_h + 8 if self.ylabel else 0) + int(tick_w) + 8

    def draw(self, image, box: tuple[int, int, int, int], font, dpi: float, x_range: tuple[float, float] | None,
             margin: int) -> None:
        """Draw the panel into ``box`` (left, top, right, bottom, in pixels) of ``image``, its plot area ``margin``
        pixels from the box's left; ``x_range``: the data's x extent (shared between panels with ``sharex``), None
        for this panel's own."""
        from PIL import Image, ImageDraw

        draw = ImageDraw.Draw(image)
        black = (0, 0, 0)
        px = dpi / 72  # pixels per point
        text_h = draw.textbbox((0, 0), "0", font=font)[3]
        x_lo, x_hi = x_range or self.x_range() or (0.0, 1.0)
        if x_hi <= x_lo:
            x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
        y_lo, y_hi = self._y_range()
        y_ticks = self._y_ticks(y_lo, y_hi)
        left = box[0] + margin
        top = box[1] + (2 * text_h if self.title else 6)
        right, bottom = box[2] - 10, box[3] - (2 * text_h + 16 if self.xlabel else text_h + 12)

        def x_px(x: float) -> float:
            return left + (x - x_lo) / (x_hi - x_lo) * (right - left)

        def y_px(y: float) -> float:  # y on the panel's scale
            return bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top)

        grid = _on_white((176, 176, 176), min(1.0, 2 * self.grid_alpha))
        x_ticks = self.xticks or ([t for t in _nice_ticks(x_lo, x_hi)], [_label(t) for t in _nice_ticks(x_lo, x_hi)])
        for t, text in zip(*x_ticks):
            if x_lo <= t <= x_hi:
                xp = x_px(t)
                if self.grid_alpha:
                    draw.line([(xp, top), (xp, bottom)], fill=grid)
                draw.line([(xp, bottom), (xp, bottom + 4)], fill=black)
                draw.text((xp - draw.textlength(text, font=font) / 2, bottom + 6), text, fill=black, font=font)
        for t, text in y_ticks:
            yp = y_px(t)
            if self.grid_alpha:
                draw.line([(left, yp), (right, yp)], fill=grid)
            draw.line([(left - 4, yp), (left, yp)], fill=black)
            draw.text((left - 6 - draw.textlength(text, font=font), yp - text_h / 2), text, fill=black, font=font)

        base = y_px(max(y_lo, 0.0)) if not self.log_y else bottom
        for b in self.bars:
            for x, h in zip(b["xs"], b["heights"]):
                if math.isfinite(h) and (h > 0 or not self.log_y):
                    yp = y_px(self._y(h))
                    draw.rectangle([x_px(x - b["width"] / 2), min(yp, base), x_px(x + b["width"] / 2), max(yp, base)],
                                   fill=b["colour"])
        for h in self.hlines:
            if h["y"] > 0 or not self.log_y:
                yp, width = y_px(self._y(h["y"])), max(1, round(h["width"] * px))
                dash = 6 if h["dashed"] else right - left
                for x0 in range(left, right, 2 * dash if h["dashed"] else dash):
                    draw.line([(x0, yp), (min(right, x0 + dash), yp)], fill=h["colour"], width=width)
        for line in self.lines:
            width, radius = max(1, round(line["width"] * px)), line["marker"] * px / 2
            segment: list[tuple[float, float]] = []
            for x, y in [*zip(line["xs"], line["ys"]), (math.nan, math.nan)]:  # NaN (or <= 0 on a log axis) breaks it
                if math.isfinite(x) and math.isfinite(y) and (y > 0 or not self.log_y):
                    segment.append((x_px(x), y_px(self._y(y))))
                    continue
                if len(segment) > 1:
                    draw.line(segment, fill=line["colour"], width=width, joint="curve")
                for xp, yp in segment if radius else []:
                    draw.ellipse([xp - radius, yp - radius, xp + radius, yp + radius], fill=line["colour"])
                segment = []
        draw.rectangle([left, top, right, bottom], outline=black)

        if self.xlabel:
            w = draw.textlength(self.xlabel, font=font)
            draw.text(((left + right - w) / 2, bottom + 10 + text_h), self.xlabel, fill=black, font=font)
        if self.title:
            w = draw.textlength(self.title, font=font)
            draw.text(((left + right - w) / 2, box[1] + 2), self.title, fill=black, font=font)
        if self.ylabel:  # written across, then turned a quarter, as matplotlib's
            label = Image.new("L", (int(draw.textlength(self.ylabel, font=font)) + 2, text_h + 4), 0)
            ImageDraw.Draw(label).text((1, 0), self.ylabel, fill=255, font=font)
            label = label.rotate(90, expand=True)
            image.paste(black, (box[0] + 4, int((top + bottom - label.height) / 2)), label)
        entries = [(item["label"], item["colour"]) for item in (*self.lines, *self.bars, *self.hlines) if item["label"]]
        if self.legend_on and entries:
            x0, y0 = right - max(draw.textlength(text, font=font) for text, _ in entries) - 36, top + 6
            draw.rectangle([x0, y0, right - 6, y0 + len(entries) * (text_h + 6) + 4], fill=WHITE, outline=(200,) * 3)
            for i, (text, colour) in enumerate(entries):
                y = y0 + 4 + i * (text_h + 6)
                draw.rectangle([x0 + 5, y + 1, x0 + 19, y + text_h], fill=colour)
                draw.text((x0 + 24, y), text, fill=black, font=font)


class LiteFigure:
    """A grid of :class:`LiteAxes` that ``savefig`` draws to a PNG with Pillow."""

    def __init__(self, nrows: int, ncols: int, figsize: tuple[float, float], sharex: bool) -> None:
        self.nrows, self.ncols, self.figsize, self.sharex = nrows, ncols, figsize, sharex
        self.axes = [[LiteAxes() for _ in range(ncols)] for _ in range(nrows)]

    def savefig(self, fp, format: str = "png", dpi: float = 100, **_: Any) -> None:
        from PIL import Image, ImageDraw, ImageFont

        try:
            font = ImageFont.load_default(size=round(10 * dpi / 72))  # Pillow >= 10.1 with FreeType: scalable
        except (TypeError, OSError, AttributeError, ImportError):
            font = ImageFont.load_default()
        width, height = (max(1, round(s * dpi)) for s in self.figsize)
        image = Image.new("RGB", (width, height), WHITE)
        panels = [ax for row in self.axes for ax in row]
        ranges = [r for r in (ax.x_range() for ax in panels) if r]
        shared = (min(r[0] for r in ranges), max(r[1] for r in ranges)) if self.sharex and ranges else None
        measure = ImageDraw.Draw(image)
        margins = [max(row[j].left_margin(measure, font) for row in self.axes) for j in range(self.ncols)]  # aligned
        for i, row in enumerate(self.axes):
            for j, ax in enumerate(row):
                box = (j * width // self.ncols, i * height // self.nrows, (j + 1) * width // self.ncols,
                       (i + 1) * height // self.nrows)
                ax.draw(image, box, font, dpi, shared, margins[j])
        image.save(fp, format=format.upper())


class LitePyplot:
    """The two ``pyplot`` calls ganvae makes, ``subplots`` and ``close``, for :class:`LiteFigure`."""

    def subplots(self, nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] = (6.4, 4.8),
                 sharex: bool = False, squeeze: bool = True, **_: Any):
        """``(figure, axes)`` as pyplot gives them: one :class:`LiteAxes`, or a numpy array of them (1-d when
        ``squeeze`` and one of the dimensions is 1, else 2-d)."""
        import numpy as np

        fig = LiteFigure(nrows, ncols, figsize, sharex)
        axes = np.empty((nrows, ncols), dtype=object)
        for i in range(nrows):
            for j in range(ncols):
                axes[i, j] = fig.axes[i][j]
        if squeeze:
            return fig, (axes[0, 0] if axes.size == 1 else axes.reshape(-1) if 1 in axes.shape else axes)
        return fig, axes

    def close(self, fig: Any = None) -> None:
        """Nothing to free: a :class:`LiteFigure` holds no window or canvas."""


LITE_PYPLOT = LitePyplot()
