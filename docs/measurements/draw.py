#!/usr/bin/env python3
"""Draws the book's charts from the committed `load_test.sh --csv` files next to this script.

    python3 docs/measurements/draw.py

Reads normal.csv, flood.csv and idle.csv (columns: stage, scenario, clients, requests, ok,
errors, rps, p50_ms, p90_ms, p99_ms, max_ms, peak_threads, peak_rss_kb) and writes
normal.svg (throughput and p99 per stage), flood.svg (peak threads and memory per stage) and
idle.svg (throughput and p99 per stage with idle clients). Python 3 standard library only;
the output depends on nothing but the CSV files, so redrawing unchanged data changes nothing.
"""

import csv
import html
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

WIDTH = 760
PANEL_GAP = 40
LABEL_WIDTH = 150
ROW_HEIGHT = 26
BAR_HEIGHT = 16
FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"


def read_rows(name):
    """The rows of one CSV file, in file order."""
    path = HERE / name
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def number(text):
    """A CSV cell as a float, or None for "n/a" and empty cells."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def axis(value):
    """A round tick step and the end of an axis that holds `value` in at most six steps."""
    if value <= 0:
        return 0.25, 1.0
    power = 1e-3
    while power * 10 <= value:
        power *= 10
    for step in (power * m for m in (0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10)):
        ticks = -(-value // step)  # ceiling
        if ticks <= 6:
            return step, step * max(ticks, 1)
    return power * 10, power * 10 * -(-value // (power * 10))


def short(value):
    """A number for a label: no trailing zeros, thousands grouped."""
    if value == 0:
        return "0"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.2f}".rstrip("0").rstrip(".")


def panel(x, y, width, title, unit, rows, colour):
    """Horizontal bars, one per (label, value) row, with the value written after each bar."""
    parts = [
        f"<text x='{x}' y='{y + 14}' {FONT} font-size='14' font-weight='bold'>"
        f"{html.escape(title)}</text>"
    ]
    top = y + 28
    plot_x = x + LABEL_WIDTH
    plot_width = width - LABEL_WIDTH - 70
    values = [v for _, v in rows if v is not None]
    step, end = axis(max(values) if values else 0.0)
    ticks = round(end / step)
    # Grid lines with their values, so a bar can be read without its label.
    for i in range(ticks + 1):
        gx = plot_x + plot_width * i / ticks
        parts.append(
            f"<line x1='{gx:.1f}' y1='{top}' x2='{gx:.1f}' y2='{top + ROW_HEIGHT * len(rows)}' "
            "stroke='#dddddd' stroke-width='1'/>"
        )
        parts.append(
            f"<text x='{gx:.1f}' y='{top + ROW_HEIGHT * len(rows) + 14}' {FONT} font-size='10' "
            f"fill='#666666' text-anchor='middle'>{short(step * i)}</text>"
        )
    for i, (label, value) in enumerate(rows):
        row_y = top + ROW_HEIGHT * i
        parts.append(
            f"<text x='{plot_x - 8}' y='{row_y + BAR_HEIGHT - 3}' {FONT} font-size='12' "
            f"text-anchor='end'>{html.escape(label)}</text>"
        )
        if value is None:
            parts.append(
                f"<text x='{plot_x + 4}' y='{row_y + BAR_HEIGHT - 3}' {FONT} font-size='12' "
                "fill='#666666'>n/a</text>"
            )
            continue
        bar = max(plot_width * value / end, 1.0)
        parts.append(
            f"<rect x='{plot_x}' y='{row_y}' width='{bar:.1f}' height='{BAR_HEIGHT}' "
            f"fill='{colour}'/>"
        )
        parts.append(
            f"<text x='{plot_x + bar + 5:.1f}' y='{row_y + BAR_HEIGHT - 3}' {FONT} "
            f"font-size='12'>{short(value)} {html.escape(unit)}</text>"
        )
    height = 28 + ROW_HEIGHT * len(rows) + 22
    return parts, height


def chart(path, heading, caption, panels):
    """An SVG file of panels stacked vertically, with a heading and a caption."""
    parts = []
    y = 34
    for title, unit, rows, colour in panels:
        drawn, height = panel(20, y, WIDTH - 40, title, unit, rows, colour)
        parts.extend(drawn)
        y += height + PANEL_GAP
    total = y - PANEL_GAP + 30
    svg = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{total}' "
        f"viewBox='0 0 {WIDTH} {total}'>",
        f"<rect width='{WIDTH}' height='{total}' fill='white'/>",
        f"<text x='20' y='22' {FONT} font-size='16' font-weight='bold'>"
        f"{html.escape(heading)}</text>",
        *parts,
        f"<text x='20' y='{total - 10}' {FONT} font-size='11' fill='#444444'>"
        f"{html.escape(caption)}</text>",
        "</svg>",
    ]
    path.write_text("\n".join(svg) + "\n")
    print(f"wrote {path.relative_to(HERE.parent.parent)}")


def column(rows, name, scale=1.0):
    return [(row["stage"], None if number(row[name]) is None else number(row[name]) * scale)
            for row in rows]


def describe(rows):
    """'50 clients' from the rows' clients column (the same in every row of one run)."""
    clients = sorted({row["clients"] for row in rows})
    return f"{'/'.join(clients)} clients"


def main():
    machine = (HERE / "machine.txt").read_text().splitlines()[0].strip()
    source = "from docs/measurements/{}, " + machine

    normal = read_rows("normal.csv")
    chart(
        HERE / "normal.svg",
        f"Scenario normal ({describe(normal)}): throughput and p99 latency per stage",
        source.format("normal.csv"),
        [
            ("Throughput (more is better)", "req/s", column(normal, "rps"), "#3b7dd8"),
            ("p99 latency (less is better)", "ms", column(normal, "p99_ms"), "#d8833b"),
        ],
    )

    flood = read_rows("flood.csv")
    chart(
        HERE / "flood.svg",
        f"Scenario flood ({describe(flood)} at once): the server's threads and memory",
        source.format("flood.csv"),
        [
            ("Peak threads of the server process", "", column(flood, "peak_threads"), "#8a4fd8"),
            ("Peak resident memory (RSS)", "MiB", column(flood, "peak_rss_kb", 1 / 1024),
             "#3ba07a"),
        ],
    )

    idle = read_rows("idle.csv")
    chart(
        HERE / "idle.svg",
        f"Scenario idle ({describe(idle)} and idle connections): who still gets served",
        source.format("idle.csv"),
        [
            ("Throughput of the healthy clients", "req/s", column(idle, "rps"), "#3b7dd8"),
            ("p99 latency of the healthy clients (n/a: none was served)", "ms",
             column(idle, "p99_ms"), "#d8833b"),
        ],
    )


if __name__ == "__main__":
    sys.exit(main())
