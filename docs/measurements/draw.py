#!/usr/bin/env python3
"""Draws charts of load-test runs as SVG: the book's, and any run of your own.

    python3 docs/measurements/draw.py                                 # the book's charts
    python3 docs/measurements/draw.py --csv my.csv --out my.svg       # bars per stage
    python3 docs/measurements/draw.py --trace run/ --out timeline.svg # every request, per stage
    python3 docs/measurements/draw.py --series run/ --out series.svg  # the server over time

Three kinds of input, all written by the load generator (`loadgen/`):

- `./load_test.sh --csv FILE`: one row per stage with its totals (req/s, percentiles, peak
  threads and memory). Drawn as horizontal bars, one per stage: normal.svg, flood.svg and
  idle.svg in the book.
- `./load_test.sh --trace DIR` (or `loadgen --trace FILE`): DIR/<stage>.trace.csv, one row
  per request with the moments it was scheduled, connected, sent, answered and done. Drawn
  as a timeline: one row per client, time across, each request coloured by what the client
  was waiting for. Several stages under the same load are stacked on one time axis, so the
  idea of each stage shows as a shape: a staircase, a wall, rounds of four.
- `./load_test.sh --series DIR` (or `loadgen --series FILE`): DIR/<stage>.series.csv, the
  server sampled every 100 ms (requests in flight, connections, threads, memory, clients
  waiting outside and inside). Drawn as one panel per quantity, one line per stage.

With no arguments it redraws the book's charts from the files committed next to this
script: normal.svg, flood.svg and idle.svg from normal.csv, flood.csv and idle.csv, and, when
those directories exist, timeline.svg from traces/*.trace.csv (the first 250 ms of the runs)
and flood-series.svg and idle-series.svg from series/flood/ and series/idle/.

Python 3 standard library only, so it runs wherever the book is read. The output depends on
nothing but the input files and the command line (no dates, no random numbers), so
redrawing unchanged data gives byte-identical files and git shows no change.
"""

import argparse
import csv
import os
import html
import math
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional

HERE = Path(__file__).resolve().parent

WIDTH = 760
PANEL_GAP = 40
LABEL_WIDTH = 150
ROW_HEIGHT = 26
BAR_HEIGHT = 16
FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"
# Roughly how wide one character of 11 px text is, to wrap captions and lay out legends
# without measuring fonts (which the standard library cannot do).
CHAR_WIDTH_11PX = 5.9


class FileProblem(Exception):
    """A file that cannot be read, drawn or written, said in one sentence.

    `main` prints it and exits with status 1: a learner who typed a wrong path should read
    what is wrong, not a Python traceback."""


# ---------------------------------------------------------------------------------------
# Reading the files
# ---------------------------------------------------------------------------------------

# The columns each kind of file must have. Columns are read by name and extra columns are
# ignored, so a newer load generator that adds a column does not break an older draw.py.
CSV_COLUMNS = ("stage", "scenario", "clients", "requests", "ok", "errors", "rps", "p50_ms",
               "p90_ms", "p99_ms", "max_ms", "peak_threads", "peak_rss_kb")
TRACE_COLUMNS = ("client", "kind", "request", "reused", "scheduled_us", "connect_us",
                 "connected_us", "sent_us", "first_byte_us", "done_us", "status", "failure")
SERIES_COLUMNS = ("t_ms", "outside", "inside", "done", "failed", "threads", "rss_kb",
                  "in_flight", "connections_open")

# What each kind of file is called in messages, and the flag that draws it: a file given
# to the wrong flag gets a hint to the right one.
FILE_KINDS = (
    ("a `load_test.sh --csv` file", "--csv", CSV_COLUMNS),
    ("a trace file (`load_test.sh --trace DIR`)", "--trace", TRACE_COLUMNS),
    ("a series file (`load_test.sh --series DIR`)", "--series", SERIES_COLUMNS),
)


def table_rows(path, required):
    """(line number, row as a dict) for each row of a CSV file, after checking that its
    header has the `required` columns.

    Rows are read one at a time: a trace of a run with no work can have half a million, and
    a list of that many dicts would take gigabytes. Every way a file can be unusable
    (missing, unreadable, empty, wrong header, a row with too few cells) becomes a
    FileProblem that names the file."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames
            if not header:
                raise FileProblem(f"{path} is empty")
            missing = [name for name in required if name not in header]
            if missing:
                raise FileProblem(wrong_header(path, header, missing, required))
            for line, row in enumerate(reader, start=2):
                if None in row.values():
                    raise FileProblem(f"{path} line {line}: fewer cells than the header has")
                yield line, row
    except OSError as e:
        raise FileProblem(f"cannot read {path}: {e.strerror or e}") from None
    except (csv.Error, UnicodeDecodeError) as e:
        raise FileProblem(f"{path} is not a CSV file: {e}") from None


def read_table(path, required):
    """The rows of a small CSV file as dicts, in file order."""
    return [row for _, row in table_rows(path, required)]


def wrong_header(path, header, missing, required):
    """The message for a file whose header lacks columns, with a hint if it is another kind."""
    wanted = next(what for what, _, columns in FILE_KINDS if columns == required)
    message = (f"{path} is not {wanted}: its header lacks {', '.join(missing)} "
               f"(it is: {','.join(header)})")
    for what, flag, columns in FILE_KINDS:
        if columns != required and all(name in header for name in columns):
            message += f"; it looks like {what}, drawn with {flag}"
    return message


def files_in(paths, suffix, flag):
    """The files named on the command line, a directory standing for its files ending in
    `suffix`, in name order so that stages appear in reading order."""
    files = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.name.endswith(suffix))
            if not found:
                raise FileProblem(f"{path} has no *{suffix} files for {flag}")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise FileProblem(f"{path}: no such file or directory")
    return files


def stage_of(path, suffix):
    """The stage a file is about, from its name: 01_single.trace.csv -> 01_single."""
    name = path.name
    return name[: -len(suffix)] if name.endswith(suffix) and name != suffix else path.stem


def machine_of(directory):
    """The first line of machine.txt in `directory` (which machine the run was on), if any."""
    try:
        return (directory / "machine.txt").read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, IndexError):
        return None


# ---------------------------------------------------------------------------------------
# Numbers, axes and SVG pieces shared by every chart
# ---------------------------------------------------------------------------------------

def number(text):
    """A CSV cell as a float, or None for "n/a" and empty cells."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def axis(value, whole=False):
    """A round tick step and the end of an axis that holds `value` in at most six steps.

    With `whole`, the steps are whole numbers: threads and connections come in ones, and a
    tick at 2.5 threads would read as a mistake."""
    if value <= 0:
        return (1.0, 1.0) if whole else (0.25, 1.0)
    power = 1e-3
    while power * 10 <= value:
        power *= 10
    steps = (power * m for m in (0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10))
    for step in (s for s in steps if not whole or s == round(s) and s >= 1):
        ticks = -(-value // step)  # ceiling
        if ticks <= 6:
            return step, step * max(ticks, 1)
    return power * 10, power * 10 * -(-value // (power * 10))


def short(value):
    """A number for a label: no trailing zeros, thousands grouped."""
    if value < 0:
        return "-" + short(-value)
    if value == 0:
        return "0"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.2f}".rstrip("0").rstrip(".")


def label(x, y, words, size=12, **attributes):
    """A <text> element. Keyword arguments become attributes (`text_anchor` -> text-anchor)."""
    extra = "".join(f" {key.replace('_', '-')}='{value}'" for key, value in attributes.items())
    return (f"<text x='{x:.1f}' y='{y:.1f}' {FONT} font-size='{size}'{extra}>"
            f"{html.escape(words)}</text>")


def document(height, parts):
    """A whole SVG file: a white page WIDTH wide, holding `parts`."""
    return "\n".join([
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' "
        f"viewBox='0 0 {WIDTH} {height}'>",
        f"<rect width='{WIDTH}' height='{height}' fill='white'/>",
        *parts,
        "</svg>",
    ]) + "\n"


def write(path, svg):
    """Writes an SVG file and says so, with the path as short as it can be said."""
    try:
        path.write_text(svg, encoding="utf-8")
    except OSError as e:
        raise FileProblem(f"cannot write {path}: {e.strerror or e}") from None
    try:
        shown = path.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = path
    print(f"wrote {shown}")


def wrapped(text, size=11):
    """`text` cut into lines that fit the page at font `size`."""
    chars = int((WIDTH - 40) / (CHAR_WIDTH_11PX * size / 11))
    return textwrap.wrap(text, chars)


def caption(lines, y):
    """Caption lines at `y` and below, grey and small; returns them and the height used."""
    parts = [label(20, y + 15 * i, line, 11, fill="#444444") for i, line in enumerate(lines)]
    return parts, 15 * len(lines)


def legend(items, y):
    """Colour swatches with their meaning, laid out left to right and wrapped to the page.

    Each item is (fills, words, shape); shape "box" is a phase (its fills side by side: a
    dark and a light shade, or one hatching), "tick" a mark at the end of a request, "line"
    a line of a series chart (its colour, then its dash pattern, "" for none). Returns the
    parts and the height used."""
    parts = []
    x, line_y = 20.0, y
    for fills, words, shape in items:
        # A line's swatch is longer than a box's: long enough for its dashes to show.
        swatch = 26 if shape == "line" else 18
        width = swatch + len(words) * CHAR_WIDTH_11PX + 16
        if x > 20 and x + width > WIDTH - 20:
            x, line_y = 20.0, line_y + 17
        if shape == "tick":
            parts.append(f"<rect x='{x + 5:.1f}' y='{line_y - 10:.1f}' width='3' height='13' "
                         f"fill='{fills[0]}'/>")
        elif shape == "line":
            # A series line as drawn: its colour, and its dashes if it has some (fills[1]).
            dashes = f" stroke-dasharray='{fills[1]}'" if len(fills) > 1 and fills[1] else ""
            parts.append(f"<line x1='{x:.1f}' y1='{line_y - 4:.1f}' x2='{x + 22:.1f}' "
                         f"y2='{line_y - 4:.1f}' stroke='{fills[0]}' stroke-width='2.5'"
                         f"{dashes}/>")
        else:
            part = 14 / len(fills)
            for i, fill in enumerate(fills):
                parts.append(f"<rect x='{x + part * i:.1f}' y='{line_y - 9:.1f}' "
                             f"width='{part:.1f}' height='10' fill='{fill}'/>")
        parts.append(label(x + swatch, line_y, words, 11))
        x += width
    return parts, line_y - y + 17


def checked_axis(low, end, window):
    """time_axis(low, end), after making sure the window (--from, --to) holds some data."""
    if end <= low:
        raise FileProblem(f"nothing to draw: the data ends at {short(end)} ms, before "
                          f"--from {short(window[0])}")
    return time_axis(low, end)


def time_axis(low, end):
    """Round ticks for a time axis from `low` to `end` (ms), in ms or s by the span.

    Returns (low, high, ticks, unit, divisor): the axis runs from `low` to `high` ms (`end`,
    rounded up to a tick if that is close), with a label at each tick in `unit` (ms divided
    by `divisor`).
    `low` itself is not rounded: idle connections opened 40 ms before the start should not
    cost the chart a whole second of empty axis."""
    divisor, unit = (1000.0, "s") if end - low > 2000 else (1.0, "ms")
    step, _ = axis((end - low) / divisor)
    step *= divisor
    # Round the end up to a tick only when that costs little of the width: a run of 2.007 s
    # should not get an axis to 2.5 s.
    rounded = math.ceil(end / step) * step
    high = rounded if rounded - end <= 0.03 * (end - low) else end
    ticks = [step * i for i in range(math.ceil(low / step), math.floor(high / step) + 1)]
    return low, high, ticks, unit, divisor


def time_grid(ticks, unit, divisor, x_of, top, bottom):
    """Vertical grid lines at the ticks, labelled under `bottom`; the last label has the unit."""
    parts = []
    for i, tick in enumerate(ticks):
        x = x_of(tick)
        parts.append(f"<line x1='{x:.1f}' y1='{top}' x2='{x:.1f}' y2='{bottom}' "
                     "stroke='#dddddd' stroke-width='1'/>")
        words = short(tick / divisor) + (f" {unit}" if i == len(ticks) - 1 else "")
        # A label centred on the last tick could run off the page ("1,000 ms"): end it
        # there instead.
        anchor = "end" if x + len(words) * 3 > WIDTH - 4 else "middle"
        parts.append(label(x + (4 if anchor == "end" else 0), bottom + 12, words, 10,
                           fill="#666666", text_anchor=anchor))
    return parts


# ---------------------------------------------------------------------------------------
# Bar charts: one bar per stage, from `load_test.sh --csv` files
# ---------------------------------------------------------------------------------------

def panel(x, y, width, title, unit, rows, colour, label_width=LABEL_WIDTH):
    """Horizontal bars, one per (label, value) row, with the value written after each bar."""
    parts = [
        f"<text x='{x}' y='{y + 14}' {FONT} font-size='14' font-weight='bold'>"
        f"{html.escape(title)}</text>"
    ]
    top = y + 28
    plot_x = x + label_width
    plot_width = width - label_width - 70
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
    for i, (name, value) in enumerate(rows):
        row_y = top + ROW_HEIGHT * i
        parts.append(
            f"<text x='{plot_x - 8}' y='{row_y + BAR_HEIGHT - 3}' {FONT} font-size='12' "
            f"text-anchor='end'>{html.escape(name)}</text>"
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


def bar_chart(heading, source, panels):
    """An SVG of bar panels stacked vertically, with a heading and a caption."""
    parts = []
    y = 34
    # Room for the longest label (about 7 px a character at 12 px), at least LABEL_WIDTH.
    longest = max((len(name) for _, _, rows, _ in panels for name, _ in rows), default=0)
    label_width = max(LABEL_WIDTH, int(longest * 7 + 16))
    for title, unit, rows, colour in panels:
        drawn, height = panel(20, y, WIDTH - 40, title, unit, rows, colour, label_width)
        parts.extend(drawn)
        y += height + PANEL_GAP
    # A caption too long for one line (several files named) wraps; the book's charts have
    # one line, and their files stay exactly as they were before wrapping existed.
    lines = wrapped(source) or [""]
    total = y - PANEL_GAP + 30 + 15 * (len(lines) - 1)
    first = total - 10 - 15 * (len(lines) - 1)
    return document(total, [
        f"<text x='20' y='22' {FONT} font-size='16' font-weight='bold'>"
        f"{html.escape(heading)}</text>",
        *parts,
        *(f"<text x='20' y='{first + 15 * i}' {FONT} font-size='11' fill='#444444'>"
          f"{html.escape(line)}</text>" for i, line in enumerate(lines)),
    ])


# The panels a scenario's chart shows: what that scenario is there to demonstrate. Each is
# (title, unit, column, scale, colour).
THROUGHPUT = ("Throughput (more is better)", "req/s", "rps", 1.0, "#3b7dd8")
P99 = ("p99 latency (less is better)", "ms", "p99_ms", 1.0, "#d8833b")
THREADS = ("Peak threads of the server process", "", "peak_threads", 1.0, "#8a4fd8")
MEMORY = ("Peak resident memory (RSS)", "MiB", "peak_rss_kb", 1 / 1024, "#3ba07a")
BAR_CHARTS = {
    "normal": ("Scenario normal ({clients}): throughput and p99 latency per stage",
               [THROUGHPUT, P99]),
    "flood": ("Scenario flood ({clients} at once): the server's threads and memory",
              [THREADS, MEMORY]),
    "idle": ("Scenario idle ({clients} and idle connections): who still gets served",
             [("Throughput of the healthy clients", "req/s", "rps", 1.0, "#3b7dd8"),
              ("p99 latency of the healthy clients (n/a: none was served)", "ms", "p99_ms",
               1.0, "#d8833b")]),
}
# Rows from several scenarios, or one this script does not know: show everything.
ALL_BARS = ("Throughput, p99 latency, threads and memory per stage ({clients})",
            [THROUGHPUT, P99, THREADS, MEMORY])


def describe(rows):
    """'50 clients' from the rows' clients column (the same in every row of one run)."""
    clients = sorted({row["clients"] for row in rows}, key=lambda c: (number(c) or 0, c))
    return f"{'/'.join(clients)} clients"


def bar_rows(rows, column, scale):
    """(label, value) pairs for one panel; None where the cell is n/a."""
    pairs = []
    for row in rows:
        value = number(row[column])
        pairs.append((row["label"], None if value is None else value * scale))
    return pairs


def labelled(runs):
    """Every row of every file, with the label its bar gets: the stage, and the file's name
    too when the same stage comes from two files (`04_thread_pool (pool-16)`)."""
    rows = [dict(row, file=path.stem) for path, file_rows in runs for row in file_rows]
    stages = [row["stage"] for row in rows]
    for row in rows:
        repeated = stages.count(row["stage"]) > 1
        row["label"] = f"{row['stage']} ({row['file']})" if repeated else row["stage"]
    return rows


def draw_bars(paths, shown, out, machine, heading=None):
    """The bar chart of one or more `--csv` files, its panels chosen by their scenario."""
    runs = [(path, read_table(path, CSV_COLUMNS)) for path in paths]
    rows = labelled(runs)
    if not rows:
        raise FileProblem(f"{', '.join(shown)}: no rows under the header")
    scenarios = sorted({row["scenario"] for row in rows})
    preset, panels = ALL_BARS
    if len(scenarios) == 1:
        preset, panels = BAR_CHARTS.get(scenarios[0], ALL_BARS)
    source = f"from {', '.join(shown)}" + (f", {machine}" if machine else "")
    write(out, bar_chart(
        heading or preset.format(clients=describe(rows)),
        source,
        [(title, unit, bar_rows(rows, column, scale), colour)
         for title, unit, column, scale, colour in panels],
    ))


# ---------------------------------------------------------------------------------------
# Timelines: every request of every client, from trace files
# ---------------------------------------------------------------------------------------

# What a client can be waiting for, in the order a request goes through them. The client
# sees only these moments; in particular, it cannot see whether its connection is still in
# the kernel's backlog, in the server's queue or being served: all of that is one phase,
# and the chart must not pretend to know more. Each phase has a dark and a light shade,
# for a client's consecutive requests to alternate between (see row_runs).
PHASES = {
    "start": (("#a9a4d4", "#d6d3ee"), "waiting to start (open loop: due, not yet sent)"),
    "connect": (("#e69f00", "#f6cf7a"),
                "connecting (a full listen backlog shows here: SYN retries of 1 s+)"),
    "wait": (("#0072b2", "#7ab8e2"), "waiting for the answer: in the backlog, the server's "
                                     "queue or being served (the client cannot tell which)"),
    "read": (("#009e73", "#7bd0b4"), "reading the answer"),
    "idle": (("#a8a8a8", "#d4d4d4"), "idle or trickling connection (not a healthy client)"),
}
# How a request ended, marked at its end. `unfinished` (still going when the run's time was
# up) is not a failure, and gets no mark: its bar runs to the end of the run.
MARKS = {
    "failed": ("#d62728", "failed (refused, reset, timeout, bad status, other)"),
    "cut": ("#222222", "cut: closed by the server"),
}
FAILED = {"refused", "reset", "timeout", "bad_status", "other"}
TIMES = ("scheduled_us", "connect_us", "connected_us", "sent_us", "first_byte_us", "done_us")
# Rows a timeline shows at most: one per client up to this, evenly chosen clients beyond.
# A row narrower than 2 px cannot be told from its neighbours.
MOST_ROWS_ALONE = 100
MOST_ROWS_STACKED = 50
MOST_OTHER_ROWS = 12
TIMELINE_LEFT = 80


class Request(NamedTuple):
    """One row of a trace file, its times in ms since the start of the run (None: not
    reached). A tuple rather than a class: a trace can have half a million of them."""
    client: int
    kind: str
    number: int
    scheduled: Optional[float]
    connect: Optional[float]
    connected: Optional[float]
    sent: Optional[float]
    first_byte: Optional[float]
    done: Optional[float]
    failure: str


@dataclass
class Trace:
    """One stage's trace: its requests and the span of time they cover."""
    stage: str
    requests: list
    start: float
    end: float


def whole(path, line, column, cell):
    """A cell that must hold a whole number, as an int; anything else names the cell."""
    try:
        return int(cell)
    except ValueError:
        raise FileProblem(f"{path} line {line}: {column} is {cell!r}, not a whole number") \
            from None


def read_trace(path):
    """A trace file as a Trace, its times in ms. Its end is the last moment any request
    reached: the file does not say when the run stopped."""
    requests = []
    for line, row in table_rows(path, TRACE_COLUMNS):
        times = [None if row[column].strip() == ""
                 else whole(path, line, column, row[column]) / 1000.0 for column in TIMES]
        requests.append(Request(whole(path, line, "client", row["client"]),
                                row["kind"].strip(),
                                whole(path, line, "request", row["request"]),
                                *times, row["failure"].strip()))
    moments = [t for r in requests for t in (r.scheduled, r.connect, r.connected, r.sent,
                                              r.first_byte, r.done) if t is not None]
    if not requests:
        raise FileProblem(f"{path} has a header but no requests: did the run start at all?")
    if not moments:
        raise FileProblem(f"{path} has requests but no times: nothing to draw")
    return Trace(stage_of(path, ".trace.csv"), requests, min(moments), max(moments))


def phases(request, run_end):
    """The (start, end, phase) spans of one request.

    Each phase begins at its own moment and lasts until the next moment the request reached;
    the last one lasts until the request was done, or until the end of the run if it never
    was. So a refused connect is all `connect`, an idle connection all `wait`."""
    begins = [
        (request.scheduled, "start"),
        (request.connect, "connect"),
        # On a new connection the request goes out the moment it is connected; on a
        # kept-alive one (no connect) the wait starts when it was sent.
        (request.connected if request.connected is not None else request.sent, "wait"),
        (request.first_byte, "read"),
    ]
    begins = [(t, phase) for t, phase in begins if t is not None]
    end = request.done if request.done is not None else run_end
    spans = []
    for i, (t, phase) in enumerate(begins):
        until = begins[i + 1][0] if i + 1 < len(begins) else end
        if until > t:
            spans.append((t, until, phase))
    return spans


def mark_of(request):
    """Which mark a request's end gets, if any."""
    if request.failure in FAILED:
        return "failed"
    if request.failure == "cut":
        return "cut"
    return None


def by_client(trace):
    """The requests grouped by client, as (kind, client, requests) in the order the rows are
    drawn: healthy clients first, in the order they were first answered, then the other
    kinds (idle, trickle) in the order they connected.

    The client number says only in which order the load generator started its threads; the
    order of first answers is the order the server took them in, which is what makes a
    one-at-a-time server draw a staircase and a pool of four draw steps of four."""
    clients = {}
    for request in trace.requests:
        clients.setdefault((request.kind, request.client), []).append(request)
    never = float("inf")

    def order(item):
        (kind, client), requests = item
        answers = [r.first_byte for r in requests if r.first_byte is not None]
        starts = [t for r in requests for t in (r.connect, r.sent) if t is not None]
        first_answer = min(answers, default=never) if kind == "healthy" else 0
        return (kind != "healthy", kind, first_answer, min(starts, default=never), client)

    return [(kind, client, sorted(requests, key=lambda r: r.number))
            for (kind, client), requests in sorted(clients.items(), key=order)]


def evenly(items, most):
    """At most `most` of `items`, evenly spread over them, in their order."""
    if len(items) <= most:
        return items
    return [items[int((i + 0.5) * len(items) / most)] for i in range(most)]


def rows_to_draw(trace, most):
    """The rows of one panel as (kind, [(kind, client, requests)]) groups, and a note saying
    how many clients each group had and how many are drawn."""
    groups = {}
    for row in by_client(trace):
        groups.setdefault(row[0], []).append(row)
    drawn, notes = [], []
    for kind, rows in groups.items():
        chosen = evenly(rows, most if kind == "healthy" else MOST_OTHER_ROWS)
        drawn.append((kind, chosen))
        name = "clients" if kind == "healthy" else kind
        if len(chosen) < len(rows):
            notes.append(f"{len(rows):,} {name}, {len(chosen)} rows evenly chosen")
        else:
            notes.append(f"{len(rows):,} {name}")
    return drawn, notes


# A request narrower than this many pixels cannot be drawn on its own: it is drawn as part
# of a hatched run ("many short requests") instead. If a figure would still need more than
# MOST_BOXES rectangles, the threshold doubles until it does not, which keeps a long trace's
# SVG small: a rectangle is about 20 bytes.
DENSE_PX = (4, 8, 16, 32, 64)
MOST_BOXES = 8000
DENSE = 2  # the shade index of a hatched run (0 and 1 are dark and light)


@dataclass
class Panel:
    """One stage's timeline, drawn at y = 0, and what it used (for the legend)."""
    parts: list
    height: int
    boxes: int
    used: set


def raster(spans, low, per_px, width):
    """The spans of one row as runs of whole pixels: [(first_px, last_px + 1, key)].

    Each pixel takes the key (phase and shade) that fills most of it. A run of 8 s over
    660 px gives a pixel 12 ms, longer than many requests, so drawing each request as its
    own rectangle would write thousands of invisible slivers; runs of pixels keep the file
    small and draw exactly what can be seen."""
    cells = [None] * width
    for start, end, key in spans:
        a = max((start - low) / per_px, 0.0)
        b = min((end - low) / per_px, float(width))
        for i in range(int(a), min(math.ceil(b), width)):
            cover = min(b, i + 1) - max(a, i)
            if cover > 0:
                cell = cells[i] = cells[i] or {}
                cell[key] = cell.get(key, 0.0) + cover
    order = list(PHASES)
    runs = []
    for i, cell in enumerate(cells):
        if not cell:
            continue
        # Ties go to the earlier phase and the darker shade, so the result never depends
        # on the order of a dict.
        key = max(cell, key=lambda k: (cell[k], -order.index(k[0]), -k[1]))
        if runs and runs[-1][1] == i and runs[-1][2] == key:
            runs[-1] = (runs[-1][0], i + 1, key)
        else:
            runs.append((i, i + 1, key))
    return runs


def row_runs(requests, run_end, low, per_px, width, dense_px):
    """One client's row as runs of pixels.

    Consecutive requests alternate dark and light, so that one long wait and many short
    ones back to back do not look the same. A request narrower than `dense_px` pixels
    cannot show its shade; it is hatched instead, and hatched runs a pixel or two apart
    join up: stage 02's 20 ms requests over 8 s become one hatched bar, not a rectangle per
    pixel, while the long wait of the same client before it stays a solid one."""
    spans = []
    for i, request in enumerate(requests):
        pieces = phases(request, run_end)
        if pieces:
            narrow = (pieces[-1][1] - pieces[0][0]) / per_px < dense_px
            shade = DENSE if narrow else i % 2
            spans.extend((start, end, (phase, shade)) for start, end, phase in pieces)
    runs = []
    for run in raster(spans, low, per_px, width):
        if runs and run[2][1] == DENSE and runs[-1][2] == run[2] and run[0] - runs[-1][1] <= 2:
            runs[-1] = (runs[-1][0], run[1], run[2])
        else:
            runs.append(run)
    return runs


def fill_of(phase, shade):
    """The fill of a run: the phase's dark or light colour, or its hatching."""
    return f"url(#dense-{phase})" if shade == DENSE else PHASES[phase][0][shade]


def hatching():
    """The hatch patterns of DENSE runs: each phase's two shades in diagonal stripes, which
    read as a texture (many requests) rather than as one more request."""
    parts = ["<defs>"]
    for phase, ((dark, light), _) in PHASES.items():
        parts.append(f"<pattern id='dense-{phase}' width='4' height='4' "
                     "patternUnits='userSpaceOnUse' patternTransform='rotate(45)'>"
                     f"<rect width='4' height='4' fill='{light}'/>"
                     f"<rect width='2' height='4' fill='{dark}'/></pattern>")
    parts.append("</defs>")
    return parts


def box(x, y, width, height):
    """A rectangle as SVG path data: far shorter than a <rect> when there are thousands."""
    return f"M{x} {y}h{width}v{height}h-{width}z"


def row_shapes(requests, kind, run_end, axis_, width, y, bar, dense_px):
    """The path data of one client's row, by fill: its phases, then its end marks."""
    low, high = axis_[0], axis_[1]
    per_px = (high - low) / width
    shapes = {}
    for first, last, (phase, shade) in row_runs(requests, run_end, low, per_px, width,
                                                dense_px):
        fill = fill_of("idle" if kind != "healthy" else phase, shade)
        shapes.setdefault(fill, []).append(box(TIMELINE_LEFT + first, y, last - first, bar))
    marked = set()
    for request in requests:
        mark = mark_of(request)
        end = request.done if request.done is not None else run_end
        if mark is None or not low <= end <= high:
            continue
        px = min(int((end - low) / per_px), width - 1)
        if (px, mark) not in marked:
            marked.add((px, mark))
            shapes.setdefault(MARKS[mark][0], []).append(
                box(TIMELINE_LEFT + px - 1, y - 1, 2, bar + 2))
    return shapes


def timeline_panel(trace, axis_, run_end, most, budget, dense_px, windowed=False):
    """One stage's rows under its name, on the shared time axis, as a Panel at y = 0.

    `budget` is the height the rows should take: rows get thinner as there are more of
    them, down to 2 px, and `most` bounds how many there are."""
    low, high, ticks, unit, divisor = axis_
    width = WIDTH - TIMELINE_LEFT - 20
    groups, notes = rows_to_draw(trace, most)
    count = sum(len(rows) for _, rows in groups)
    row = max(2, min(9, budget // max(count, 1)))
    bar = row - 1 if row >= 4 else row
    parts = [label(20, 13, trace.stage, 13, font_weight="bold"),
             label(WIDTH - 20, 13, "; ".join(notes) + summary(trace, windowed), 11,
                   fill="#444444", text_anchor="end")]
    top = 22
    gap = 6  # between the healthy clients and the idle ones, so the groups read apart
    bottom = top + count * row + gap * (len(groups) - 1)
    parts.append(f"<rect x='{TIMELINE_LEFT}' y='{top}' width='{width}' "
                 f"height='{bottom - top}' fill='#f4f4f4'/>")
    parts.extend(time_grid(ticks, unit, divisor,
                           lambda t: TIMELINE_LEFT + width * (t - low) / (high - low),
                           top, bottom))
    shapes = {}
    row_y = top
    for kind, rows in groups:
        name = "clients" if kind == "healthy" else kind
        parts.append(label(TIMELINE_LEFT - 6, row_y + min(len(rows) * row, 40) / 2 + 4,
                           name, 10, fill="#444444", text_anchor="end"))
        for _, _, requests in rows:
            for fill, data in row_shapes(requests, kind, run_end, axis_, width, row_y, bar,
                                         dense_px).items():
                shapes.setdefault(fill, []).extend(data)
            row_y += row
        row_y += gap
    # One path per fill, phases first so that the end marks are drawn over them.
    fills = [fill_of(phase, shade) for phase in PHASES for shade in (0, 1, DENSE)]
    fills += [colour for colour, _ in MARKS.values()]
    for fill in fills:
        if fill in shapes:
            parts.append(f"<path fill='{fill}' d='{''.join(shapes[fill])}'/>")
    return Panel(parts, bottom + 18, sum(len(d) for d in shapes.values()), set(shapes))


def summary(trace, windowed=False):
    """'; 412 requests, 3 failed' for a panel's title line; counted over the whole run, which
    a chart of part of it (`windowed`) says."""
    healthy = [r for r in trace.requests if r.kind == "healthy"]
    words = f"; {len(healthy):,} requests"
    failed = sum(1 for r in healthy if r.failure in FAILED)
    if failed:
        words += f", {failed:,} failed"
    return words + (" in the whole run" if windowed else "")


def timeline_legend(used, dense_ms):
    """The legend items for the fills and marks the panels used, in the order of PHASES."""
    items = [(shades, words, "box") for phase, (shades, words) in PHASES.items()
             if any(fill_of(phase, shade) in used for shade in (0, 1))]
    # One swatch stands for all hatchings: waiting's, if there is one, as it is the usual.
    hatched = sorted((phase for phase in PHASES if fill_of(phase, DENSE) in used),
                     key=lambda phase: phase != "wait")
    if hatched:
        items.append(((fill_of(hatched[0], DENSE),),
                      f"many short requests, each under {short(dense_ms)} ms: too short to "
                      "draw one by one", "box"))
    items += [((colour,), words, "tick") for colour, words in MARKS.values() if colour in used]
    return items


def draw_timeline(paths, shown, out, machine, heading, window=(None, None)):
    """Timelines of one or more traces, stacked on one time axis.

    The traces are of runs under the same load, so they lasted as long as each other: a
    request still unfinished in one of them ends at the last moment seen in any of them
    (or at the end of the `window`, when that is later)."""
    traces = [read_trace(path) for path in paths]
    start, end = window
    last = max(t.end for t in traces)
    run_end = max(last, end if end is not None else last)
    low = start if start is not None else min(0.0, *(t.start for t in traces))
    axis_ = checked_axis(low, end if end is not None else last, window)
    most = MOST_ROWS_ALONE if len(traces) == 1 else MOST_ROWS_STACKED
    budget = 400 if len(traces) == 1 else 150
    for dense_px in DENSE_PX:
        panels = [timeline_panel(t, axis_, run_end, most, budget, dense_px,
                                 start is not None or end is not None) for t in traces]
        if sum(panel.boxes for panel in panels) <= MOST_BOXES:
            break
    if start is not None or end is not None:
        when = (f"in the first {short(axis_[1])} ms" if axis_[0] == 0
                else f"from {short(axis_[0])} to {short(axis_[1])} ms")
    else:
        when = "over time"
    heading = heading or (f"Every request of every client {when}"
                          + ("" if len(traces) == 1 else ", one panel per stage"))
    parts = hatching() + [label(20, 22, heading, 16, font_weight="bold")]
    dense_ms = dense_px * (axis_[1] - axis_[0]) / (WIDTH - TIMELINE_LEFT - 20)
    drawn, height = legend(timeline_legend(set().union(*(p.used for p in panels)), dense_ms),
                           44)
    parts.extend(drawn)
    y = 44 + height
    for panel in panels:
        parts.append(f"<g transform='translate(0,{y})'>")
        parts.extend(panel.parts)
        parts.append("</g>")
        y += panel.height + 12
    # Said when only part of the runs is drawn, so that nobody takes the window for a run.
    if start is not None or end is not None:
        edge = (f"Drawn from {short(axis_[0])} to {short(axis_[1])} ms of the runs (--from "
                f"{short(axis_[0])} --to {short(axis_[1])}): a bar that reaches the right edge "
                "goes on beyond it. ")
    else:
        edge = ("A bar that reaches the end of the run was still going when the run's time "
                "was up. ")
    notes = (
        "One row per client, time across: healthy clients in the order the server first "
        "answered them, other connections below. A client's consecutive requests alternate "
        "dark and light; a pixel shows the phase that fills most of it. " + edge
        + f"From {', '.join(shown)}" + (f", {machine}." if machine else ".")
    )
    drawn, height = caption(wrapped(notes), y + 6)
    parts.extend(drawn)
    write(out, document(int(y + height + 12), parts))


# ---------------------------------------------------------------------------------------
# Series: the server sampled over time, from series files
# ---------------------------------------------------------------------------------------

# The quantities drawn, one panel each: (column, title, scale). All but memory are counts.
SERIES_PANELS = (
    ("in_flight", "In flight: requests the server is working on", 1.0),
    ("connections_open", "Connections open at the server", 1.0),
    ("threads", "Threads of the server process", 1.0),
    ("rss_kb", "Memory of the server (RSS, MiB)", 1 / 1024),
    ("outside", "Outside: in the listen backlog, not accepted yet", 1.0),
    ("inside", "Inside: accepted, no answer yet (queued or being served)", 1.0),
)
MEASURES = {"rss_kb"}
# The quantities the server counts itself and the load generator asks it for (GET /stats),
# rather than reads from outside: a stage that cannot answer in time leaves them unknown.
FROM_STATS = {"in_flight", "connections_open"}
# One colour per stage, the same in every panel: the Okabe-Ito palette, which stays
# distinct for the common kinds of colour blindness.
STAGE_COLOURS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000")
# And one dash pattern per stage (stroke-dasharray, "" solid): where two stages agree, the
# line drawn last would hide the other; gaps as long as the dashes let the other show through.
STAGE_DASHES = ("", "9 5", "2 3", "9 4 2 4", "5 5", "2 2", "7 7")
SERIES_LEFT = 70
SERIES_HEIGHT = 90


@dataclass
class Series:
    """One stage's series file: the sample times (ms) and each column's values (None:
    unknown at that moment)."""
    stage: str
    times: list
    columns: dict


def read_series(path):
    """A series file as a Series; rows without a time are an error, empty cells unknown."""
    times, columns = [], {column: [] for column, _, _ in SERIES_PANELS}
    for line, row in table_rows(path, SERIES_COLUMNS):
        t = number(row["t_ms"])
        if t is None:
            raise FileProblem(f"{path} line {line}: t_ms is {row['t_ms']!r}, not a number")
        times.append(t)
        for column in columns:
            columns[column].append(number(row[column]))
    if not times:
        raise FileProblem(f"{path} has no samples under its header")
    return Series(stage_of(path, ".series.csv"), times, columns)


def polylines(times, values, x_of, y_of):
    """SVG points of a line through the known samples; an unknown sample breaks the line
    rather than being guessed."""
    lines, points = [], []
    for t, v in zip(times, values):
        if v is None:
            if points:
                lines.append(points)
            points = []
        else:
            points.append(f"{x_of(t):.1f},{y_of(v):.1f}")
    if points:
        lines.append(points)
    return [" ".join(points) for points in lines]


def short_names(all_series):
    """What each stage is called in the panels' peak values: its number (01) when every
    stage's name starts with a distinct one, else its whole name."""
    numbers = [s.stage.split("_")[0] for s in all_series]
    if all(n.isdigit() for n in numbers) and len(set(numbers)) == len(numbers):
        return numbers
    return [s.stage for s in all_series]


def styles(all_series):
    """The (colour, dashes) of each stage's line. When every stage has a distinct number,
    the number picks them, so stage 06 looks the same in your chart as in the book's, whatever
    else is drawn with it; otherwise (two runs of one stage) the order of the files does."""
    numbers = [s.stage.split("_")[0] for s in all_series]
    if all(n.isdigit() and int(n) >= 1 for n in numbers) and len(set(numbers)) == len(numbers):
        keys = [int(n) - 1 for n in numbers]
    else:
        keys = list(range(len(all_series)))
    return [(STAGE_COLOURS[k % len(STAGE_COLOURS)], STAGE_DASHES[k % len(STAGE_DASHES)])
            for k in keys]


def sparse(all_series):
    """The stages that answered GET /stats in fewer than half of their samples, with how
    many they answered and how many there were (the most of any /stats column)."""
    found = []
    for series in all_series:
        known = max(sum(v is not None for v in series.columns[c]) for c in FROM_STATS)
        if known < len(series.times) / 2:
            found.append((series, known, len(series.times)))
    return found


def peaks(all_series, column, scale, names, colours, starred):
    """The highest value of each stage as (words, SVG text), each in the stage's colour.

    Lines on top of each other (stages 03, 04 and 05 all keep six threads) hide all but the
    last one drawn; the numbers say what each stage reached. A stage in `starred` answered
    too few of the samples of a /stats column for its highest to mean much: it gets a star,
    which the note under the legend explains."""
    words, spans = [], []
    for series, name, colour in zip(all_series, names, colours):
        values = [v * scale for v in series.columns[column] if v is not None]
        star = "*" if column in FROM_STATS and series.stage in starred else ""
        if values or star:
            said = f"{name}: {short(max(values)) if values else 'none'}{star}"
            words.append(said)
            spans.append(f"<tspan fill='{colour}'>{html.escape(said)}</tspan>")
    return "highest " + " · ".join(words), "highest " + " · ".join(spans)


def series_panel(all_series, column, title, scale, y, axis_, names, looks, starred):
    """One quantity over time, a line per stage in its look (colour, dashes); returns parts
    and height."""
    low, high, ticks, unit, divisor = axis_
    width = WIDTH - SERIES_LEFT - 20
    panel_top = y
    parts = [label(20, y + 13, title, 13, font_weight="bold")]
    # The peaks go at the right of the title, or under it when both would not fit (the
    # widths are estimates: about 7.4 px a character in bold 13 px, 5.3 in 10 px).
    words, spans = peaks(all_series, column, scale, names, [c for c, _ in looks], starred)
    if 20 + len(title) * 7.4 + 16 + len(words) * 5.3 > WIDTH - 20:
        y += 14
    parts.append(f"<text x='{WIDTH - 20}' y='{y + 13}' {FONT} font-size='10' fill='#444444' "
                 f"text-anchor='end'>{spans}</text>")
    top, bottom = y + 22, y + 22 + SERIES_HEIGHT
    values = [v * scale for s in all_series for v in s.columns[column] if v is not None]
    step, end = axis(max(values), whole=column not in MEASURES)

    def x_of(t):
        return SERIES_LEFT + width * (t - low) / (high - low)

    def y_of(v):
        return bottom - SERIES_HEIGHT * v * scale / end

    parts.extend(time_grid(ticks, unit, divisor, x_of, top, bottom))
    steps = round(end / step)
    for i in range(steps + 1):
        tick_y = bottom - SERIES_HEIGHT * i / steps
        parts.append(f"<line x1='{SERIES_LEFT}' y1='{tick_y:.1f}' x2='{SERIES_LEFT + width}' "
                     f"y2='{tick_y:.1f}' stroke='#eeeeee' stroke-width='1'/>")
        parts.append(label(SERIES_LEFT - 6, tick_y + 4, short(step * i), 10, fill="#666666",
                           text_anchor="end"))
    parts.append(f"<line x1='{SERIES_LEFT}' y1='{bottom}' x2='{SERIES_LEFT + width}' "
                 f"y2='{bottom}' stroke='#999999' stroke-width='1'/>")
    for i, (series, (colour, dashes)) in enumerate(zip(all_series, looks)):
        # Each line a little thinner than the one before, so that where stages agree
        # exactly, the earlier ones still show as edges around the later ones, and through
        # the gaps of their dashes.
        stroke = 1.5 + 0.6 * (len(all_series) - 1 - i)
        dashed = f" stroke-dasharray='{dashes}'" if dashes else ""
        for points in polylines(series.times, series.columns[column], x_of, y_of):
            if " " in points:
                parts.append(f"<polyline fill='none' stroke='{colour}' "
                             f"stroke-width='{stroke:.1f}' stroke-linejoin='round'{dashed} "
                             f"points='{points}'/>")
            else:  # a sample alone between unknown ones: a line of one point is invisible
                cx, cy = points.split(",")
                parts.append(f"<circle cx='{cx}' cy='{cy}' r='1.5' fill='{colour}'/>")
    return parts, bottom - panel_top + 18


def listed(names):
    """'01', '01 and 03', '01, 03 and 05'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def spread(counts):
    """'3' or '0-3': the range of a few whole numbers."""
    return str(counts[0]) if counts[0] == counts[-1] else f"{counts[0]}-{counts[-1]}"


def within(series, low, high):
    """The samples of `series` from `low` to `high` ms: a window on a longer run."""
    keep = [i for i, t in enumerate(series.times) if low <= t <= high]
    return Series(series.stage, [series.times[i] for i in keep],
                  {c: [values[i] for i in keep] for c, values in series.columns.items()})


def draw_series(paths, shown, out, machine, heading, window=(None, None)):
    """The quantities of one or more series files over time, a panel per quantity."""
    all_series = [read_series(path) for path in paths]
    start, end = window
    low = start if start is not None else min(0.0, *(s.times[0] for s in all_series))
    axis_ = checked_axis(low, end if end is not None else max(s.times[-1] for s in all_series),
                         window)
    all_series = [within(s, axis_[0], axis_[1]) for s in all_series]
    names = short_names(all_series)
    looks = styles(all_series)
    heading = heading or "The server over time, sampled every 100 ms"
    parts = [label(20, 22, heading, 16, font_weight="bold")]
    items = [(look, s.stage, "line") for look, s in zip(looks, all_series)]
    drawn, height = legend(items, 44)
    parts.extend(drawn)
    y = 44 + height
    # The stages that answered /stats too rarely for its panels to show them, said at the
    # top, before anyone reads a low highest as the stage's own peak.
    few = sparse(all_series)
    asked = any(v is not None for s in all_series for c in FROM_STATS for v in s.columns[c])
    if few and asked:
        named = [name for name, s in zip(names, all_series) if any(s is f[0] for f in few)]
        answered = sorted({known for _, known, _ in few})
        samples = sorted({total for _, _, total in few})
        note = (f"* In flight and connections open are the server's own counts, from its GET "
                f"/stats: {listed(named)} answered it in {spread(answered)} of "
                f"{spread(samples)} samples. A stage whose places are all taken answers /stats "
                "only when its turn comes, mostly after the sample has given up: its line is a "
                "few dots or none, and its highest is from the few moments it was not full. Its "
                "own peak over the run is the table's peak in flight.")
        drawn, height = caption(wrapped(note), y - 4)
        parts.extend(drawn)
        y += height + 6
    starred = {s.stage for s, _, _ in few}
    unknown = []
    for column, title, scale in SERIES_PANELS:
        if all(v is None for s in all_series for v in s.columns[column]):
            unknown.append(column)
            continue
        drawn, height = series_panel(all_series, column, title, scale, y, axis_, names,
                                     looks, starred)
        parts.extend(drawn)
        y += height + 12
    notes = (("Not drawn, unknown in every sample: " + ", ".join(unknown) + ". ")
             if unknown else "")
    notes += ("A gap in a line is a sample the load generator could not take. "
              + f"From {', '.join(shown)}" + (f", {machine}." if machine else "."))
    drawn, height = caption(wrapped(notes), y + 6)
    parts.extend(drawn)
    write(out, document(int(y + height + 12), parts))


# ---------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------

HELP = """\
inputs (give one kind per call; a directory stands for its files of that kind):
  --csv FILE...      `./load_test.sh --csv FILE` writes one row per stage: req/s, latency
                     percentiles, peak threads and memory. Drawn as bars per stage, the
                     panels chosen by the scenario (normal, flood, idle). With several
                     files, a stage that appears twice is labelled with its file's name.
  --trace PATH...    `./load_test.sh --trace DIR` writes DIR/<stage>.trace.csv (`loadgen
                     --trace FILE` one file): one row per request with the moments it
                     connected, was sent, answered and done. Drawn as a timeline, one row
                     per client; several stages are stacked on one time axis.
  --series PATH...   `./load_test.sh --series DIR` writes DIR/<stage>.series.csv (`loadgen
                     --series FILE` one file): the server every 100 ms. Drawn as a panel per
                     quantity (in flight, connections, threads, memory, waiting outside and
                     inside), a line per stage, each stage in its own colour and dashes. A
                     stage that answered GET /stats in fewer than half of the samples gets a
                     star on its in-flight and connection figures, and a note says why.

output (--out): by default next to the input: my.csv -> my.svg, DIR -> DIR/timeline.svg
or DIR/series.svg, X.trace.csv -> X.timeline.svg, X.series.csv -> X.series.svg. A
machine.txt beside the inputs (as measure.sh writes) is quoted in the caption.

with no inputs, the book's charts are redrawn from the files next to this script:
normal.svg, flood.svg, idle.svg from normal.csv, flood.csv, idle.csv; timeline.svg from
traces/*.trace.csv (its first 250 ms, as --from 0 --to 250 draws it), flood-series.svg and
idle-series.svg from series/flood/ and series/idle/, each when its files exist.

a trace file does not record when its run stopped: a request still unfinished then is
drawn up to the last moment seen in any of the traces drawn together, or to --to.

examples:
  ./load_test.sh --trace run --series run 01 02 03
  python3 docs/measurements/draw.py --trace run --out timeline.svg
  python3 docs/measurements/draw.py --trace run/01_single.trace.csv --out 01.svg
  python3 docs/measurements/draw.py --trace run --to 1000 --out first-second.svg
  python3 docs/measurements/draw.py --series run --out series.svg
  python3 docs/measurements/draw.py --csv my.csv --out my.svg
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="draw.py",
        description="Draws SVG charts of load-test runs: bars per stage, timelines of every\n"
                    "request, the server over time. Python 3, no packages.",
        epilog=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = parser.add_mutually_exclusive_group()
    kinds.add_argument("--csv", nargs="+", type=Path, metavar="FILE",
                       help="load_test.sh --csv files: bars per stage")
    kinds.add_argument("--trace", nargs="+", type=Path, metavar="PATH",
                       help="trace files or directories of *.trace.csv: timelines")
    kinds.add_argument("--series", nargs="+", type=Path, metavar="PATH",
                       help="series files or directories of *.series.csv: over time")
    parser.add_argument("--out", type=Path, metavar="SVG",
                        help="the SVG file to write (default: next to the input)")
    parser.add_argument("--title", metavar="TEXT",
                        help="the chart's heading, instead of one said by its input")
    parser.add_argument("--from", dest="start", type=float, metavar="MS",
                        help="timelines and series: start the time axis here (ms since the "
                             "run's start), to look closely at part of a run")
    parser.add_argument("--to", dest="end", type=float, metavar="MS",
                        help="timelines and series: end the time axis here; for a trace, "
                             "also when the run stopped (the file does not say), where "
                             "unfinished requests end")
    args = parser.parse_args(argv)
    given = [flag for flag, value in (("--out", args.out), ("--title", args.title),
                                      ("--from", args.start), ("--to", args.end))
             if value is not None]
    if given and not (args.csv or args.trace or args.series):
        parser.error(f"{given[0]} needs an input: --csv, --trace or --series")
    if args.csv and (args.start is not None or args.end is not None):
        parser.error("--from and --to are for --trace and --series: bars have no time axis")
    if args.start is not None and args.end is not None and args.end <= args.start:
        parser.error("--to must be later than --from")
    return args


def default_out(paths, suffix, in_directory, beside):
    """Where a chart goes without --out: beside its one input, named after it.

    A directory gets DIR/<in_directory> (run/timeline.svg); a file loses `suffix` and gains
    `beside` (run/01_single.trace.csv -> run/01_single.timeline.svg)."""
    if len(paths) != 1:
        raise FileProblem("several inputs: say where the chart goes with --out FILE.svg")
    path = paths[0]
    if path.is_dir():
        return path / in_directory
    stem = path.name[: -len(suffix)] if path.name.endswith(suffix) else path.stem
    return path.with_name(stem + beside)


def machine_of_all(paths):
    """The machine the inputs were measured on, if they share a directory that says."""
    directories = {path.parent for path in paths}
    return machine_of(directories.pop()) if len(directories) == 1 else None


def draw_given(args):
    """The one chart the command line asks for."""
    window = (args.start, args.end)
    if args.csv:
        paths = files_in(args.csv, ".csv", "--csv")
        out = args.out or default_out(args.csv, ".csv", "bars.svg", ".svg")
        draw_bars(paths, [str(p) for p in args.csv], out, machine_of_all(paths), args.title)
    elif args.trace:
        paths = files_in(args.trace, ".trace.csv", "--trace")
        out = args.out or default_out(args.trace, ".trace.csv", "timeline.svg",
                                      ".timeline.svg")
        draw_timeline(paths, [str(p) for p in args.trace], out, machine_of_all(paths),
                      args.title, window)
    else:
        paths = files_in(args.series, ".series.csv", "--series")
        out = args.out or default_out(args.series, ".series.csv", "series.svg",
                                      ".series.svg")
        draw_series(paths, [str(p) for p in args.series], out, machine_of_all(paths),
                    args.title, window)


# The part of the traced runs the book's timeline shows (--from, --to, in ms): a quarter of
# a second, a dozen 20 ms requests per client. The whole 2 s squeezes every request into a
# stripe a few pixels wide, and the rounds of four of stages 03 to 05 no longer show.
BOOK_TIMELINE = (0.0, 250.0)


def draw_book():
    """The book's charts, from the files committed next to this script.

    The bar charts' CSV files are always there; traces/ and series/ come from later runs
    of measure.sh, and until they exist their charts are skipped without a word."""
    machine = machine_of(HERE)
    for name in ("normal", "flood", "idle"):
        draw_bars([HERE / f"{name}.csv"], [f"docs/measurements/{name}.csv"],
                  HERE / f"{name}.svg", machine)
    traces = sorted((HERE / "traces").glob("*.trace.csv"))
    if traces:
        draw_timeline(traces, ["docs/measurements/traces/"], HERE / "timeline.svg", machine,
                      None, BOOK_TIMELINE)
    for scenario in ("flood", "idle"):
        series = sorted((HERE / "series" / scenario).glob("*.series.csv"))
        if series:
            draw_series(series, [f"docs/measurements/series/{scenario}/"],
                        HERE / f"{scenario}-series.svg", machine,
                        f"Scenario {scenario}: the server over time, every 100 ms")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.csv or args.trace or args.series:
            draw_given(args)
        else:
            draw_book()
    except FileProblem as e:
        print(f"draw.py: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `draw.py | head`: whoever read our output has gone, which is no error of ours.
        sys.stdout = open(os.devnull, "w")
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
