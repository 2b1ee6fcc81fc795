"""The fit's plots for docs/simulator.md, as plain SVG (no plotting dependency).

Run ``python -m simulator.plots`` (needs ``../shared`` for the data side). Hand-written SVG
keeps matplotlib out of the dependencies for four small charts: bars and lines are all they
need, and the files diff well.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from simulator import analysis, calibrate, frankfurt
from simulator.fill_model import load_params

OUT = Path(__file__).resolve().parents[1] / "docs" / "img"
W, H, PAD = 640, 300, 48
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c")


def _svg(title: str, body: list[str], legend: list[str]) -> str:
    items = [
        f'<rect x="{W - 190}" y="{14 + 18 * i}" width="12" height="12" fill="{COLORS[i]}"/>'
        f'<text x="{W - 172}" y="{24 + 18 * i}" font-size="12">{name}</text>'
        for i, name in enumerate(legend)
    ]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'font-family="sans-serif">\n<rect width="{W}" height="{H}" fill="white"/>\n'
        f'<text x="{PAD}" y="22" font-size="14" font-weight="bold">{title}</text>\n'
        + "\n".join(body + items) + "\n</svg>\n"
    )


def _axes(ymax: float, labels: list[str], ylabel: str) -> tuple[list[str], float, float]:
    plot_w, plot_h = W - 2 * PAD, H - 2 * PAD
    out = [f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="black"/>',
           f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H - PAD}" stroke="black"/>',
           f'<text x="8" y="{PAD - 8}" font-size="11">{ylabel}</text>']
    for k in range(5):
        v = ymax * k / 4
        y = H - PAD - plot_h * k / 4
        out.append(f'<text x="{PAD - 6}" y="{y + 4:.0f}" font-size="10" '
                   f'text-anchor="end">{v:.2g}</text>')
        out.append(f'<line x1="{PAD}" y1="{y:.0f}" x2="{W - PAD}" y2="{y:.0f}" '
                   'stroke="#ddd"/>')
    step = plot_w / len(labels)
    every = max(1, len(labels) // 12)
    for i, lab in enumerate(labels):
        if i % every == 0:
            out.append(f'<text x="{PAD + step * (i + 0.5):.0f}" y="{H - PAD + 16}" '
                       f'font-size="10" text-anchor="middle">{lab}</text>')
    return out, step, plot_h


def bars(title: str, labels: list[str], series: list[tuple[str, np.ndarray]], ylabel: str
         ) -> str:
    ymax = max(float(np.max(s)) for _, s in series) * 1.1
    body, step, plot_h = _axes(ymax, labels, ylabel)
    bw = step * 0.8 / len(series)
    for j, (_, values) in enumerate(series):
        for i, v in enumerate(values):
            h = plot_h * v / ymax
            x = PAD + step * i + step * 0.1 + bw * j
            body.append(f'<rect x="{x:.1f}" y="{H - PAD - h:.1f}" width="{bw:.1f}" '
                        f'height="{h:.1f}" fill="{COLORS[j]}"/>')
    return _svg(title, body, [name for name, _ in series])


def lines(title: str, x: np.ndarray, series: list[tuple[str, np.ndarray, str]], xlabels:
          list[str], ylabel: str) -> str:
    ymax = max(float(np.nanmax(s)) for _, s, _ in series) * 1.1
    body, _, plot_h = _axes(ymax, xlabels, ylabel)
    span = float(x.max() - x.min()) or 1.0
    for j, (_, ys, style) in enumerate(series):
        pts = [
            (PAD + (W - 2 * PAD) * (xi - x.min()) / span, H - PAD - plot_h * yi / ymax)
            for xi, yi in zip(x, ys, strict=True) if not np.isnan(yi)
        ]
        if style == "dots":
            body += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="1.6" fill="{COLORS[j]}"/>'
                     for a, b in pts]
        else:
            d = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
            body.append(f'<polyline points="{d}" fill="none" stroke="{COLORS[j]}" '
                        'stroke-width="1.5"/>')
    return _svg(title, body, [name for name, _, _ in series])


def main() -> int:
    params = load_params()
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        data = analysis.summarise([analysis.analyse(s) for s in frankfurt.load_all()])
    except FileNotFoundError as e:
        print(f"plots: {e}", file=sys.stderr)
        return 1
    sim_series = calibrate.synthetic_series(params, 140, 365, seed=7)
    sim_fits = [analysis.analyse(s) for s in sim_series]
    sim = analysis.summarise(sim_fits)
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    (OUT / "sim_weekday.svg").write_text(bars(
        "Deposits by local weekday (mean 1)", days,
        [("Frankfurt data", np.array(data.weekday)), ("simulated", np.array(sim.weekday))],
        "factor"))
    (OUT / "sim_hour.svg").write_text(bars(
        "Deposits by local hour of day (mean 1)", [str(h) for h in range(24)],
        [("Frankfurt data", np.array(data.hour)), ("simulated", np.array(sim.hour))], "factor"))
    data_fits = [analysis.analyse(s) for s in frankfurt.load_all()]
    edges = np.arange(0, 16, 1.0)
    hd = np.histogram([r for f in data_fits for r in f.cycle_rates], edges, density=True)[0]
    hs = np.histogram([r for f in sim_fits for r in f.cycle_rates], edges, density=True)[0]
    (OUT / "sim_rates.svg").write_text(bars(
        "Fill rate per cycle [%/day], share of cycles", [f"{e:.0f}" for e in edges[:-1]],
        [("Frankfurt data", hd), ("simulated", hs)], "density"))
    one = sim_series[3]
    t = (one.t_s - one.t_s[0]) / 86400
    sel = t < 28
    fill = 100 * (130 - one.d_cm[sel]) / 130
    (OUT / "sim_example.svg").write_text(lines(
        "One simulated chamber: readings as the data pipeline sees them (4 weeks)",
        t[sel], [("reading (fill %, 2-cm steps, ghosts, spikes)", fill, "dots")],
        [f"d{d}" for d in range(0, 28)], "fill %"))
    print(f"wrote {len(list(OUT.glob('sim_*.svg')))} plots to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
