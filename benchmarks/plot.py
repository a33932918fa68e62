"""The lateness plot: one panel per scenario, the distribution of each system's lateness.

Rows may carry their samples under ``_lateness_ms`` (not shown in the tables); each panel is
an empirical CDF per system on a log axis, with the scenario's budget as a dashed line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["BUDGETS_MS", "TITLES", "plot_lateness", "samples_by_scenario"]

Row = dict[str, object]

TITLES = {
    "periodic_precision": "Every-second job: lateness per run",
    "oneoff_lateness": "One-off jobs due in 1-5 s or now: start lateness",
}
BUDGETS_MS = {"periodic_precision": 20.0, "oneoff_lateness": 50.0}
FLOOR_MS = 0.01  # a log axis has no zero; earlier or on-time starts are drawn here


def samples_by_scenario(rows: Sequence[Row]) -> dict[str, list[tuple[str, list[float]]]]:
    """(system, samples) per scenario, from the rows that carry ``_lateness_ms``."""
    found: dict[str, list[tuple[str, list[float]]]] = {}
    for row in rows:
        samples = row.get("_lateness_ms")
        if isinstance(samples, list) and samples:
            scenario = str(row.get("scenario"))
            found.setdefault(scenario, []).append((str(row.get("system")), samples))
    return found


def plot_lateness(
    samples: Mapping[str, list[tuple[str, list[float]]]], path: Path, subtitle: str
) -> str:
    """Write the PNG; return "" or why it was not written (matplotlib missing, no samples)."""
    if not samples:
        return "no lateness samples were measured"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]')"

    figure, axes = plt.subplots(1, len(samples), figsize=(7.5 * len(samples), 5.5), squeeze=False)
    for axis, (scenario, systems) in zip(axes[0], samples.items(), strict=True):
        for system, values in systems:
            ordered = sorted(max(v, FLOOR_MS) for v in values)
            n = len(ordered)
            axis.step(ordered, [(i + 1) / n for i in range(n)], where="post", label=system)
        budget = BUDGETS_MS.get(scenario)
        if budget:
            axis.axvline(budget, color="grey", linestyle="--", linewidth=1)
            axis.text(budget, 0.02, f" budget {budget:g} ms", color="grey", fontsize=8)
        axis.set_xscale("log")
        axis.set_xlim(left=FLOOR_MS * 0.8)
        axis.set_ylim(0, 1.01)
        axis.set_xlabel("lateness, ms (log scale)")
        axis.set_ylabel("share of runs started within")
        axis.set_title(TITLES.get(scenario, scenario), fontsize=11)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7, loc="upper left")
    figure.suptitle(subtitle, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return ""
