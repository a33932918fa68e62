"""Run the benchmarks and write benchmarks/RESULTS.md.

    python -m benchmarks [--quick] [--long] [--only NAME ...] [--output PATH]

Every module in MODULES exposes ``run(quick: bool = False) -> list[dict[str, object]]``;
each row names its ``scenario``, and rows are grouped into one table per scenario. A module
may also expose ``DESCRIPTIONS`` (scenario -> one paragraph) and accept ``long=`` in ``run``.
A module that fails is reported in the file and the exit status; the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

# Short name -> module, in the order they run: the in-process ones first.
MODULES = {
    "schedules": "benchmarks.bench_schedules",
    "beat": "benchmarks.bench_beat",
    "upcoming": "benchmarks.bench_upcoming",
    "jobs": "benchmarks.bench_jobs",
}
DEFAULT_OUTPUT = Path(__file__).parent / "RESULTS.md"

Row = dict[str, object]


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Run spoolcron's benchmarks."
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats and shorter runs (a few minutes)"
    )
    parser.add_argument(
        "--long", action="store_true", help="run beat_precision for 10 minutes instead of 2"
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
    args = parser.parse_args(argv)
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


# --- the machine --------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _filesystem(path: str) -> str:
    """The type of the filesystem holding *path* (fsync costs depend on it)."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    real = os.path.realpath(path)
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        device, mount, fstype = fields[:3]
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):  # the deepest mount point holding it
            best, kind = mount, f"{fstype} ({device} on {mount})"
    return kind


def _uwsgi_version() -> str:
    binary = Path(sys.executable).parent / "uwsgi"
    try:
        done = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "not installed"
    return done.stdout.strip()


def _revision() -> str:
    """The commit benchmarked, and whether the library code differs from it."""
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", "spoolcron", "schedules"],
            cwd=repo,
            capture_output=True,
            timeout=30,
            check=False,
        ).returncode
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head} (spoolcron/schedules modified since)" if changed else head


def _load() -> str:
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def machine() -> list[tuple[str, str]]:
    import django

    try:
        cpus = str(len(os.sched_getaffinity(0)))
    except AttributeError:
        cpus = str(os.cpu_count())
    return [
        ("CPUs (nproc)", cpus),
        ("CPU model", _cpu_model()),
        ("Memory", _memory()),
        ("OS", platform.platform()),
        ("Temp dir filesystem", _filesystem(tempfile.gettempdir())),
        ("Python", platform.python_version()),
        ("Django", django.get_version()),
        ("uWSGI", _uwsgi_version()),
        ("spoolcron revision", _revision()),
        ("Load average 1/5/15 min, at the end", _load()),
    ]


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
        columns += [key for key in row if key != "scenario" and key not in columns]
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


def report(
    *,
    quick: bool,
    long: bool,
    command: str,
    began: datetime,
    elapsed: float,
    timings: dict[str, float],
    results: dict[str, list[Row]],
    descriptions: dict[str, str],
    failures: dict[str, str],
    load_at_start: str,
) -> str:
    parts = ", ".join(f"{name.rsplit('.', 1)[1]} {secs:.0f} s" for name, secs in timings.items())
    kind = "QUICK run (`--quick`: fewer repeats, shorter runs)" if quick else "full run"
    if long:
        kind += ", with `--long`"
    out = [
        "# spoolcron benchmark results",
        "",
        f"This file is written by `{command}`; do not edit it by hand. This is a **{kind}**.",
        "Budgets are targets shown beside the numbers, not assertions. See README.md for what",
        "each scenario measures and how.",
        "",
        "| | |",
        "|---|---|",
        f"| Date | {began.isoformat(timespec='seconds')} |",
        f"| Run length | {elapsed:.0f} s ({parts}) |",
    ]
    out.append(f"| Load average 1/5/15 min, at the start | {load_at_start} |")
    out += [f"| {key} | {_cell(value)} |" for key, value in machine()]
    for name, error in failures.items():
        out += ["", f"## {name}: FAILED", "", "```", error.rstrip(), "```"]
    for module_name, rows in results.items():
        scenarios: dict[str, list[Row]] = {}
        for row in rows:
            scenarios.setdefault(str(row.get("scenario", "?")), []).append(row)
        for scenario, scenario_rows in scenarios.items():
            out += ["", f"## {scenario}", "", f"From `{module_name}`."]
            if scenario in descriptions:
                out += ["", descriptions[scenario]]
            out += ["", table(scenario_rows)]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    began = datetime.now(UTC)
    load_at_start = _load()
    start = time.monotonic()
    results: dict[str, list[Row]] = {}
    descriptions: dict[str, str] = {}
    failures: dict[str, str] = {}
    timings: dict[str, float] = {}
    for name in args.modules:
        print(f"running {name}{' (quick)' if args.quick else ''} ...", file=sys.stderr, flush=True)
        module_start = time.monotonic()
        module, rows, error = _run_module(name, args.quick, args.long)
        timings[name] = time.monotonic() - module_start
        print(f"  {name} took {timings[name]:.0f} s", file=sys.stderr, flush=True)
        if error:
            failures[name] = error
            print(error, file=sys.stderr)
            continue
        results[name] = rows
        descriptions.update(getattr(module, "DESCRIPTIONS", {}))
    command = "python -m benchmarks" + "".join(
        f" {a}" for a in (sys.argv[1:] if argv is None else argv)
    )
    text = report(
        quick=args.quick,
        long=args.long,
        command=command.strip(),
        began=began,
        elapsed=time.monotonic() - start,
        timings=timings,
        results=results,
        descriptions=descriptions,
        failures=failures,
        load_at_start=load_at_start,
    )
    args.output.write_text(text)
    print(text)
    print(f"written to {args.output}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
