"""The headline comparisons of a run: spoolcron's number beside each peer's, and their ratio.

Read from the rows of the same run only; a missing row (a peer that did not run) drops its
line. Each ratio says how many times better or worse spoolcron's number is than the peer's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["headlines"]

Row = dict[str, object]


def _find(rows: Sequence[Row], scenario: str, **match: object) -> Row | None:
    for row in rows:
        if row.get("scenario") != scenario:
            continue
        if all(
            (str(row.get(k, "")).startswith(v[:-1]) if isinstance(v, str) and v.endswith("*")
             else row.get(k) == v)
            for k, v in match.items()
        ):  # fmt: skip
            return row
    return None


def _number(row: Row | None, key: str) -> float | None:
    value = None if row is None else row.get(key)
    if isinstance(value, int | float) and not math.isnan(value):
        return float(value)
    return None


def _fmt(value: float, unit: str) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.3g} {unit}"


def _ratio(ours: float, theirs: float, higher_is_better: bool) -> str:
    factor = theirs / ours if higher_is_better else ours / theirs
    if factor <= 0:
        return "not comparable"
    if math.isclose(factor, 1.0, rel_tol=0.05):
        return "spoolcron about the same"
    word = "worse" if factor > 1 else "better"
    size = factor if factor > 1 else 1 / factor
    return f"spoolcron {size:,.3g}x {word}" if size < 1000 else f"spoolcron {size:,.0f}x {word}"


def _compare(
    title: str,
    ours: float | None,
    peers: list[tuple[str, float | None]],
    unit: str,
    higher_is_better: bool = False,
) -> str | None:
    if ours is None or ours <= 0:
        return None
    parts = [
        f"{name} {_fmt(value, unit)} ({_ratio(ours, value, higher_is_better)})"
        for name, value in peers
        if value is not None and value > 0
    ]
    if not parts:
        return None
    return f"- **{title}**: spoolcron {_fmt(ours, unit)}; " + "; ".join(parts) + "."


def headlines(rows: Sequence[Row]) -> list[str]:
    """Markdown bullet lines, one per comparison that this run measured."""
    lines: list[str | None] = []
    periodic = "periodic_precision"
    lines.append(
        _compare(
            "Every-second job, p99 lateness",
            _number(_find(rows, periodic, system="spoolcron*"), "p99_ms"),
            [
                ("Celery beat", _number(_find(rows, periodic, system="Celery*"), "p99_ms")),
                (
                    "APScheduler cron",
                    _number(_find(rows, periodic, system="APScheduler Cron*"), "p99_ms"),
                ),
                (
                    "bare uWSGI timer (default frequency)",
                    _number(
                        _find(
                            rows,
                            periodic,
                            system="bare uWSGI timer + spooler, --spooler-frequency default*",
                        ),
                        "p99_ms",
                    ),
                ),
            ],
            "ms",
        )
    )
    oneoff = "oneoff_lateness"
    lines.append(
        _compare(
            "One-off jobs due in 1-5 s or now, p99 lateness",
            _number(_find(rows, oneoff, system="spoolcron*", jobs="all"), "p99_ms"),
            [
                (
                    "Celery countdown",
                    _number(_find(rows, oneoff, system="Celery*", jobs="all"), "p99_ms"),
                ),
                (
                    "bare uwsgi.spool(at=) (default frequency)",
                    _number(
                        _find(
                            rows,
                            oneoff,
                            system="bare uwsgi.spool(at=), --spooler-frequency default*",
                            jobs="all",
                        ),
                        "p99_ms",
                    ),
                ),
            ],
            "ms",
        )
    )
    enqueue = "oneoff_enqueue"
    lines.append(
        _compare(
            "Enqueue rate, one caller (disk)",
            _number(
                _find(rows, enqueue, system="spoolcron schedule(), disk, FSYNC off*"),
                "jobs_per_s_median",
            ),
            [
                (
                    "Celery apply_async",
                    _number(_find(rows, enqueue, system="Celery*"), "jobs_per_s_median"),
                ),
                (
                    "bare uwsgi.spool",
                    _number(
                        _find(rows, enqueue, system="bare uwsgi.spool(at=) in a worker, disk"),
                        "jobs_per_s_median",
                    ),
                ),
            ],
            "jobs/s",
            higher_is_better=True,
        )
    )
    scale = "beat_scale"
    for count in (10_000, 100_000):
        lines.append(
            _compare(
                f"Idle scheduler wakeup with {count:,} entries",
                _number(
                    _find(rows, scale, system="spoolcron beat", entries=count), "idle_wakeup_us"
                ),
                [
                    (
                        "Celery beat",
                        _number(
                            _find(rows, scale, system="Celery beat", entries=count),
                            "idle_wakeup_us",
                        ),
                    ),
                    (
                        "APScheduler",
                        _number(
                            _find(rows, scale, system="APScheduler 3", entries=count),
                            "idle_wakeup_us",
                        ),
                    ),
                ],
                "us",
            )
        )
    oneoff_now = _find(rows, oneoff, system="spoolcron*", jobs="due now")
    celery_now = _find(rows, oneoff, system="Celery*", jobs="due now")
    lines.append(
        _compare(
            "One-off jobs due now (enqueued from another process), p99 lateness",
            _number(oneoff_now, "p99_ms"),
            [("Celery apply_async", _number(celery_now, "p99_ms"))],
            "ms",
        )
    )
    lines += _backlog(rows)
    lines += _bulk(rows)
    return [line for line in lines if line]


def _backlog(rows: Sequence[Row]) -> list[str | None]:
    """Per store: mule idle CPU and due-now lateness at the smallest and largest backlog."""
    lines: list[str | None] = []
    backlog = [r for r in rows if r.get("scenario") == "backlog_idle_cost"]
    for store in dict.fromkeys(str(r.get("store")) for r in backlog):
        measured = [
            r for r in backlog if r.get("store") == store and _number(r, "mule_cpu_pct") is not None
        ]
        if len(measured) < 2:
            continue
        low, high = measured[0], measured[-1]
        verdict = high.get("within_1.2x")
        lines.append(
            f"- **Idle cost of a pending backlog, {store} store** (the mule): "
            f"{_number(low, 'mule_cpu_pct'):.2g} % of a core with {low['backlog']:,} jobs due "
            f"next week, {_number(high, 'mule_cpu_pct'):.2g} % with {high['backlog']:,}; a job "
            f"due now started {_fmt(_number(low, 'due_now_p50_ms') or math.nan, 'ms')} vs "
            f"{_fmt(_number(high, 'due_now_p50_ms') or math.nan, 'ms')} late (p50; p99 "
            f"{_fmt(_number(low, 'due_now_p99_ms') or math.nan, 'ms')} vs "
            f"{_fmt(_number(high, 'due_now_p99_ms') or math.nan, 'ms')})"
            + (
                f"; within 1.2x at {high['backlog']:,}: {'yes' if verdict else 'no'}."
                if isinstance(verdict, bool)
                else "."
            )
        )
    return lines


def _bulk(rows: Sequence[Row]) -> list[str | None]:
    """schedule_many() into each store, jobs/s."""
    found = [
        r
        for r in rows
        if r.get("scenario") == "bulk_enqueue"
        and str(r.get("call", "")).startswith("schedule_many")
        and _number(r, "jobs_per_s_median") is not None
    ]
    if not found:
        return []
    parts = [
        f"{r['store']} on {str(r['where']).split(' (')[0]} "
        f"{_fmt(_number(r, 'jobs_per_s_median') or math.nan, 'jobs/s')}"
        for r in found
    ]
    count = found[0].get("jobs")
    return [
        f"- **Bulk enqueue** (`schedule_many()` of {count:,} jobs due in an hour, one call): "
        + "; ".join(parts)
        + "."
    ]
