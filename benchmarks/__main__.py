"""Run the benchmarks and write benchmarks/RESULTS.md and the lateness plot.

    python -m benchmarks [--quick] [--long] [--only NAME ...] [--output PATH] [--plot PATH]
                         [--note TEXT]

Every module in MODULES exposes ``run(quick: bool = False) -> list[dict[str, object]]``;
each row names its ``scenario``, and rows are grouped into one table per scenario (keys
starting with "_" carry samples for the plot, not columns). A module may also expose
``DESCRIPTIONS`` (scenario -> one paragraph) and accept ``long=`` in ``run``. A module that
fails is reported in the file and the exit status; the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import math
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from benchmarks.headline import headlines
from benchmarks.machine import LoadSampler, load, machine
from benchmarks.plot import plot_lateness, samples_by_scenario

# Short name -> module, in the order they run: the in-process ones first.
MODULES = {
    "schedules": "benchmarks.bench_schedules",
    "beat": "benchmarks.bench_beat",
    "upcoming": "benchmarks.bench_upcoming",
    "jobs": "benchmarks.bench_jobs",
    "scale": "benchmarks.bench_scale",
    "periodic": "benchmarks.bench_periodic",
    "oneoff": "benchmarks.bench_oneoff",
    "backlog": "benchmarks.bench_backlog",
}
DEFAULT_OUTPUT = Path(__file__).parent / "RESULTS.md"
DEFAULT_PLOT_NAME = "lateness.png"
LOAD_SAMPLE_S = 10.0

Row = dict[str, object]


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Run spoolcron's benchmarks."
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats and shorter runs (a few minutes)"
    )
    parser.add_argument(
        "--long", action="store_true", help="also run spoolcron's beat_precision alone, 10 minutes"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help=f"run only these modules: {', '.join(MODULES)} (or their full names)",
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the results"
    )
    parser.add_argument(
        "--plot",
        type=Path,
        help=f"where to write the lateness plot (default: {DEFAULT_PLOT_NAME} beside the output)",
    )
    parser.add_argument(
        "--note",
        default="",
        help="one sentence about the conditions of the run, written at the top of the results",
    )
    args = parser.parse_args(argv)
    if args.plot is None:
        args.plot = args.output.parent / (
            DEFAULT_PLOT_NAME if args.output == DEFAULT_OUTPUT else args.output.stem + ".png"
        )
    if args.only:
        known = {**MODULES, **{m.rsplit(".", 1)[1]: m for m in MODULES.values()}}
        unknown = [name for name in args.only if name not in known and name not in MODULES.values()]
        if unknown:
            parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(MODULES)}.")
        wanted = {known.get(name, name) for name in args.only}
        args.modules = [m for m in MODULES.values() if m in wanted]
    else:
        args.modules = list(MODULES.values())
    return args


# --- tables -------------------------------------------------------------------------------


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value).replace("|", "\\|")


def table(rows: Sequence[Row]) -> str:
    columns: list[str] = []
    for row in rows:
        # "scenario" names the table; keys starting with "_" carry samples for the plot.
        columns += [
            key
            for key in row
            if key != "scenario" and not key.startswith("_") and key not in columns
        ]
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(row.get(key)) for key in columns) + " |" for row in rows]
    return "\n".join(lines)


def _run_module(name: str, quick: bool, long: bool) -> tuple[ModuleType | None, list[Row], str]:
    """Import and run one benchmark module; on failure, its traceback instead of rows."""
    try:
        module = importlib.import_module(name)
        run = module.run
        kwargs = {"long": long} if "long" in inspect.signature(run).parameters else {}
        return module, list(run(quick, **kwargs)), ""
    except Exception:
        return None, [], traceback.format_exc()


@dataclass
class Run:
    """What one invocation measured, and under which conditions."""

    quick: bool
    long: bool
    command: str
    note: str
    began: datetime
    load_at_start: str
    elapsed: float = 0.0
    load_during: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    results: dict[str, list[Row]] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    plot: str = ""  # the PNG's path relative to the results, or why there is none

    def rows(self) -> list[Row]:
        return [row for rows in self.results.values() for row in rows]


def report(run: Run) -> str:
    parts = ", ".join(
        f"{name.rsplit('.', 1)[1]} {secs:.0f} s" for name, secs in run.timings.items()
    )
    kind = "QUICK run (`--quick`: fewer repeats, shorter runs)" if run.quick else "full run"
    if run.long:
        kind += ", with `--long`"
    out = [
        "# spoolcron benchmark results",
        "",
        f"This file is written by `{run.command}`; do not edit it by hand. This is a **{kind}**.",
        "Budgets are targets shown beside the numbers, not assertions. See README.md for what",
        "each scenario measures and how. Every number below comes from this one run on this",
        "one machine; the peers ran in the same run (at the same time, where a scenario says",
        "so), so the ratios compare like with like. Numbers from another machine or another",
        "run are not comparable with these.",
    ]
    if run.note:
        out += ["", f"**Conditions of this run:** {run.note}"]
    out += [
        "",
        "| | |",
        "|---|---|",
        f"| Date | {run.began.isoformat(timespec='seconds')} |",
        f"| Run length | {run.elapsed:.0f} s ({parts}) |",
        f"| Load average 1/5/15 min, at the start | {run.load_at_start} |",
        f"| Load average (1 min) during the run | {run.load_during} |",
    ]
    out += [f"| {key} | {_cell(value)} |" for key, value in machine()]
    lines = headlines(run.rows())
    if lines:
        out += ["", "## Headline", "", *lines]
    if run.plot.endswith(".png"):
        out += ["", f"![Lateness distributions]({run.plot})"]
    elif run.plot:
        out += ["", f"No plot: {run.plot}."]
    for name, error in run.failures.items():
        out += ["", f"## {name}: FAILED", "", "```", error.rstrip(), "```"]
    for module_name, rows in run.results.items():
        scenarios: dict[str, list[Row]] = {}
        for row in rows:
            scenarios.setdefault(str(row.get("scenario", "?")), []).append(row)
        for scenario, scenario_rows in scenarios.items():
            out += ["", f"## {scenario}", "", f"From `{module_name}`."]
            if scenario in run.descriptions:
                out += ["", run.descriptions[scenario]]
            out += ["", table(scenario_rows)]
    return "\n".join(out) + "\n"


def _plot(run: Run, path: Path, output: Path) -> str:
    subtitle = f"spoolcron benchmarks, {run.began:%Y-%m-%d %H:%M} UTC, one run, one machine"
    why_not = plot_lateness(samples_by_scenario(run.rows()), path, subtitle)
    if why_not:
        return why_not
    try:
        return str(path.resolve().relative_to(output.resolve().parent))
    except ValueError:
        return str(path.resolve())


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    command = "python -m benchmarks" + "".join(
        f" {a}" for a in (sys.argv[1:] if argv is None else argv)
    )
    run = Run(
        quick=args.quick,
        long=args.long,
        command=command.strip(),
        note=args.note,
        began=datetime.now(UTC),
        load_at_start=load(),
    )
    start = time.monotonic()
    with LoadSampler(LOAD_SAMPLE_S) as sampler:
        for name in args.modules:
            label = f"{name}{' (quick)' if args.quick else ''}"
            print(f"running {label} ...", file=sys.stderr, flush=True)
            module_start = time.monotonic()
            module, rows, error = _run_module(name, args.quick, args.long)
            run.timings[name] = time.monotonic() - module_start
            print(f"  {name} took {run.timings[name]:.0f} s", file=sys.stderr, flush=True)
            if error:
                run.failures[name] = error
                print(error, file=sys.stderr)
                continue
            run.results[name] = rows
            run.descriptions.update(getattr(module, "DESCRIPTIONS", {}))
    run.elapsed = time.monotonic() - start
    run.load_during = sampler.summary()
    run.plot = _plot(run, args.plot, args.output)
    text = report(run)
    args.output.write_text(text)
    print(text)
    print(
        f"written to {args.output}" + (f" and {args.plot}" if run.plot.endswith(".png") else ""),
        file=sys.stderr,
    )
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
