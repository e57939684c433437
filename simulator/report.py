"""``poisonlab report``: a Markdown report with PNG charts of a run or a sweep.

Everything is read back from the results database through
:class:`~stream.storage.Repository`; nothing is recomputed. A sweep report
shows the final metrics against the swept value per defense with the spread
over seeds, the metrics over time, and the final trust of honest accounts vs
bots; a run report shows the metrics over time and the trust distributions.

>>> from stream.storage import Repository
>>> import tempfile
>>> repo = Repository("sqlite://")
>>> repo.save_result({"run_id": "r1", "scenario": {"name": "demo", "attack": {"start_tick": 1}},
...                   "defense": "none", "seed": 1, "metrics": {"attack_success_rate": 0.5},
...                   "timeline": [{"tick": 0, "clean_accuracy": 0.9}, {"tick": 1, "clean_accuracy": 0.8}]})
>>> with tempfile.TemporaryDirectory() as out:
...     path = write_report(repo, "r1", out)
...     print(path.name, sorted(p.name for p in path.parent.iterdir()))
report.md ['report.md', 'timeline.png']
>>> repo.close()
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from simulator import report_charts as charts
from simulator.sweep import summarize
from stream.sweep_records import lookup

__all__ = ["SUMMARY_METRICS", "run_report", "sweep_report", "write_report"]

#: Metrics of the summary tables, in order.
SUMMARY_METRICS = ("attack_success_rate", "collateral_rate", "clean_accuracy", "label_precision",
                   "honest_vote_loss", "bot_precision", "bot_recall", "detection_delay_ticks")
#: Scenario keys shown at the top of a report.
SCENARIO_HIGHLIGHTS = ("ticks", "population.users", "population.bot_fraction", "attack.strategy",
                       "attack.start_tick", "mail.emails_per_tick", "mail.source", "review.rate")
MAX_TRUST_POINTS = 6
TRUST_NOTE = ("Trust is the mean of each account's Beta reputation at the end of the run, under the prior its "
              "age gives it; an account without settled or reviewed votes keeps its prior's mean (with the default "
              "priors, 0.75 for established accounts and 0.5 for new ones).")


def write_report(repo, ident: str, out_dir: str | Path) -> Path:
    """Write the report of the run or sweep `ident` (full id or unique prefix) to `out_dir`.

    Returns
    -------
    pathlib.Path
        The Markdown file (``report.md``); the PNGs are beside it.

    Raises
    ------
    LookupError
        If `ident` names no run or sweep, or more than one.
    """
    kind, full = repo.resolve_id(ident)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return sweep_report(repo, full, out) if kind == "sweep" else run_report(repo, full, out)


# --------------------------------------------------------------------------- formatting


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _spread(row: dict[str, Any]) -> str:
    if row["mean"] is None:
        return "—"
    if row["n"] <= 1 or row["min"] == row["max"]:
        return _num(row["mean"])
    return f"{row['mean']:.3f} ({row['min']:.3f}–{row['max']:.3f})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines


def _highlights(scenario: dict[str, Any]) -> list[str]:
    rows = [[f"`{key}`", f"`{json.dumps(lookup(scenario, key))}`"] for key in SCENARIO_HIGHLIGHTS
            if lookup(scenario, key) is not None]
    return _table(["scenario key", "value"], rows)


def _attack_start(scenario: dict[str, Any]) -> int | None:
    if lookup(scenario, "attack.strategy") in (None, "none"):
        return None
    start = lookup(scenario, "attack.start_tick")
    return int(start) if isinstance(start, (int, float)) else None


def _trust_split(outcomes: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    honest = [o["trust"] for o in outcomes if not o["is_bot"] and o["trust"] is not None]
    bots = [o["trust"] for o in outcomes if o["is_bot"] and o["trust"] is not None]
    return honest, bots


def _image(lines: list[str], path: Path | None, alt: str) -> None:
    if path is not None:
        lines += ["", f"![{alt}]({path.name})", ""]


# --------------------------------------------------------------------------- one run


def run_report(repo, run_id: str, out: Path) -> Path:
    """The report of one run: metrics, metrics over time, trust of honest accounts vs bots."""
    doc = repo.get_run(run_id)
    scenario = doc["scenario"] or {}
    metrics = doc["metrics"] or {}
    outcomes = repo.account_outcomes(run_id)
    title = f"{scenario.get('name') or 'run'} · {doc['defense']} · seed {doc['seed']}"

    timeline_png = None
    if doc["timeline"]:
        timeline_png = charts.timelines({doc["defense"]: [("this run", [doc["timeline"]])]},
                                        out / "timeline.png", title, _attack_start(scenario))
    honest, bots = _trust_split(outcomes)
    trust_png = None
    if honest or bots:
        trust_png = charts.trust_histograms([(doc["defense"], honest, bots)], out / "trust.png",
                                            f"{title}: final trust, honest accounts vs bots")

    lines = [f"# PoisonLab run `{run_id}`", "",
             f"- scenario **{scenario.get('name')}**, defense **{doc['defense']}**, seed {doc['seed']}",
             f"- status **{doc['status']}**, created {doc['created_at']}", ""]
    lines += _highlights(scenario)
    lines += ["", "## Result metrics", "",
              "Rates are pooled over the final quarter of the ticks; counts and throughput are over the whole run.",
              ""]
    ordered = [k for k in SUMMARY_METRICS if k in metrics] + sorted(k for k in metrics if k not in SUMMARY_METRICS)
    lines += _table(["metric", "value"], [[k, _num(metrics[k])] for k in ordered])
    lines += ["", "## Metrics over time", ""]
    if timeline_png is None:
        lines.append("No per-tick metrics are stored for this run.")
    _image(lines, timeline_png, "metrics over time")
    lines += ["## Accounts", ""]
    if outcomes:
        n_bots = sum(o["is_bot"] for o in outcomes)
        flagged_bots = sum(o["is_bot"] and o["flagged_tick"] is not None for o in outcomes)
        flagged_honest = sum((not o["is_bot"]) and o["flagged_tick"] is not None for o in outcomes)
        lines += _table(["accounts", "bots", "bots flagged", "honest accounts flagged"],
                        [[str(len(outcomes)), str(n_bots), str(flagged_bots), str(flagged_honest)]])
        lines.append("")
        lines.append("The defense chain keeps no reputation, so there is no trust to show."
                     if trust_png is None else TRUST_NOTE)
        _image(lines, trust_png, "trust distributions")
    else:
        lines.append("No per-account outcomes are stored for this run.")
    path = out / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- a sweep


def _point_label(params: dict[str, Any]) -> str:
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={charts.label(v)}" for k, v in params.items()) or "base scenario"


def _outcome_charts(sweep: dict[str, Any], runs: list[dict[str, Any]], out: Path) -> list[tuple[str, Path]]:
    """One chart per combination of the grid keys other than the first (the x axis)."""
    grid = sweep["grid"] or {}
    keys = list(grid)
    x_key = keys[0] if keys else None
    x_values = grid[x_key] if x_key else ["base scenario"]
    others = keys[1:]
    made = []
    for k, combo in enumerate(itertools.product(*(grid[key] for key in others))):
        fixed = dict(zip(others, combo))
        selected = [r for r in runs if all(r["params"].get(key) == v for key, v in fixed.items())]
        series: dict[str, dict[str, dict[Any, list[float]]]] = {}
        for metric, _ in charts.OUTCOME_PANELS:
            by_defense = series.setdefault(metric, {d: {} for d in sweep["defenses"]})
            for run in selected:
                value = (run["metrics"] or {}).get(metric)
                x = run["params"].get(x_key) if x_key else "base scenario"
                if value is not None and run["defense"] in by_defense:
                    by_defense[run["defense"]].setdefault(x, []).append(value)
        suffix = f"_{k + 1}" if others else ""
        where = ("; " + _point_label(fixed)) if fixed else ""
        title = f"Sweep {sweep['sweep_id']} ({sweep['name']}){where}: final metrics vs {x_key or 'defense'}"
        path = charts.outcome_vs_value(series, x_values, x_key or "", out / f"outcome_vs_value{suffix}.png",
                                       title, len(sweep["seeds"]))
        made.append((_point_label(fixed) if fixed else "", path))
    return made


def sweep_report(repo, sweep_id: str, out: Path) -> Path:
    """The report of a sweep: summary table, outcome vs swept value, metrics over time, trust."""
    sweep = repo.get_sweep(sweep_id)
    runs = repo.sweep_runs(sweep_id)
    finished = [r for r in runs if r["status"] == "finished"]
    base = (sweep["definition"] or {}).get("base", {})
    grid = sweep["grid"] or {}
    points = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())] or [{}]

    outcome_pngs: list[tuple[str, Path]] = []
    timeline_png = trust_png = None
    trust_note = "No finished run yet."
    if finished:
        outcome_pngs = _outcome_charts(sweep, finished, out)
        groups: dict[str, list[tuple[str, list[list[dict]]]]] = {}
        for defense in sweep["defenses"]:
            for point in points:
                cell_runs = [r for r in finished if r["defense"] == defense and r["params"] == point]
                if cell_runs:
                    groups.setdefault(defense, []).append(
                        (_point_label(point), [repo.timeline(r["run_id"]) for r in cell_runs]))
        scenario = repo.get_run(finished[0]["run_id"])["scenario"]
        timeline_png = charts.timelines(groups, out / "timelines.png",
                                        f"Sweep {sweep_id}: metrics over time", _attack_start(scenario))
        panels = []
        shown = points[:MAX_TRUST_POINTS]
        for defense in sweep["defenses"]:
            defense_panels = []
            for point in shown:
                honest, bots = [], []
                for run in (r for r in finished if r["defense"] == defense and r["params"] == point):
                    h, b = _trust_split(repo.account_outcomes(run["run_id"]))
                    honest += h
                    bots += b
                defense_panels.append((f"{defense} · {_point_label(point)}", honest, bots))
            if any(h or b for _, h, b in defense_panels):
                panels += defense_panels
        if panels:
            trust_png = charts.trust_histograms(panels, out / "trust.png",
                                                f"Sweep {sweep_id}: final trust of honest accounts vs bots "
                                                f"(seeds pooled)", columns=min(3, len(shown)))
            trust_note = "" if len(points) <= MAX_TRUST_POINTS else (
                f"Trust is shown for the first {MAX_TRUST_POINTS} of {len(points)} grid points.")
        else:
            trust_note = "No defense of this sweep keeps a reputation, so there is no trust to show."

    grid_text = "; ".join(f"`{k}` = {', '.join(charts.label(v) for v in vs)}" for k, vs in grid.items())
    lines = [f"# PoisonLab sweep `{sweep_id}`", "",
             f"- name **{sweep['name']}**, status **{sweep['status']}**, created {sweep['created_at']}",
             (f"- cells: {sweep['cells_done']} of {sweep['cells_total']} finished "
              f"({len(points)} grid point(s) × {len(sweep['defenses'])} defense chain(s) × "
              f"{len(sweep['seeds'])} seed(s))"),
             f"- grid: {grid_text or 'none (defenses × seeds only)'}",
             f"- defenses: {', '.join(f'`{d}`' for d in sweep['defenses'])}",
             f"- seeds: {', '.join(str(s) for s in sweep['seeds'])}", "",
             "Base scenario (the grid overrides its swept keys, the seeds and the defense chain):", ""]
    lines += _highlights(base)
    lines += ["", "## Results", "",
              "Mean over seeds, with (min–max) where the seeds differ; rates over the final quarter of the ticks.",
              ""]
    columns = {metric: summarize(runs, metric) for metric in SUMMARY_METRICS}
    header = [k.rsplit(".", 1)[-1] for k in grid] + ["defense"] + list(SUMMARY_METRICS)
    rows = []
    for i, first in enumerate(columns[SUMMARY_METRICS[0]]):
        rows.append([charts.label(first["params"][k]) for k in grid] + [first["defense"]]
                    + [_spread(columns[m][i]) for m in SUMMARY_METRICS])
    lines += _table(header, rows) if rows else ["No finished run yet."]
    lines += ["", "## Final metrics vs the swept value", ""]
    for label, path in outcome_pngs:
        if label:
            lines.append(f"With {label}:")
        _image(lines, path, f"final metrics vs swept value {label}".strip())
    lines += ["## Metrics over time", ""]
    _image(lines, timeline_png, "metrics over time")
    lines += ["## Trust of honest accounts vs bots", ""]
    if trust_note:
        lines.append(trust_note)
    if trust_png is not None:
        lines.append(TRUST_NOTE)
    _image(lines, trust_png, "trust distributions")
    lines += ["", "## Runs", ""]
    lines += _table(["run", *[k.rsplit(".", 1)[-1] for k in grid], "defense", "seed", "status", "attack_success_rate"],
                    [[f"`{r['run_id']}`", *[charts.label(r["params"].get(k)) for k in grid], r["defense"],
                      str(r["seed"]), r["status"], _num((r["metrics"] or {}).get("attack_success_rate"))]
                     for r in runs])
    path = out / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path
