"""Altair charts of results (pure functions: frames in, Vega-Lite charts out; no Streamlit)."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd

from dashboard.components.labels import title

ATTACK_COLOR = "#d62728"
BASELINE_LABEL = "no attack (baseline)"
_PALETTE = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#bcbd22"]


def series_colors(labels: Sequence[str]) -> alt.Scale:
    """A colour scale with the baseline grey, the undefended chain ``none`` red and the rest distinct.

    Examples
    --------
    >>> series_colors(["no attack (baseline)", "none", "reputation"]).to_dict()["range"]
    ['#7f7f7f', '#d62728', '#1f77b4']
    """
    others = iter(_PALETTE * (1 + len(labels) // len(_PALETTE)))
    colors = [("#7f7f7f" if lab == BASELINE_LABEL else ATTACK_COLOR if lab == "none" else next(others))
              for lab in labels]
    return alt.Scale(domain=list(labels), range=colors)


def smooth(frame: pd.DataFrame, columns: Sequence[str], window: int) -> pd.DataFrame:
    """Rolling means over ``window`` ticks (missing values skipped), per column.

    Examples
    --------
    >>> f = pd.DataFrame({"tick": [0, 1, 2], "x": [0.0, None, 1.0]})
    >>> smooth(f, ["x"], 2)["x"].tolist()
    [0.0, 0.0, 1.0]
    """
    out = frame.sort_values("tick").copy()
    if window > 1:
        for column in columns:
            out[column] = out[column].astype(float).rolling(window, min_periods=1).mean()
    return out


def named_colors(mapping: dict[str, str]) -> alt.Scale:
    """A colour scale from a ``{series: colour}`` mapping.

    Examples
    --------
    >>> named_colors({"a": "#000000"}).to_dict()
    {'domain': ['a'], 'range': ['#000000']}
    """
    return alt.Scale(domain=list(mapping), range=list(mapping.values()))


def _sized(chart, height: int):
    """`chart` at `height` pixels of plot area, stretched to the container's width.

    Streamlit's default autosize ("fit") squeezes axes and legends into the
    height; "fit-x" keeps the plot area at `height` and fits only the width.
    """
    return chart.properties(height=height, autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))


def _tick_scale(ticks: pd.Series, x_max: int | None = None) -> alt.Scale:
    """An x scale from the first tick to the last one (or `x_max`, if later)."""
    if not len(ticks):
        return alt.Undefined
    last = int(ticks.max()) if x_max is None else max(int(ticks.max()), int(x_max))
    return alt.Scale(domain=[int(ticks.min()), last], nice=False)


def _attack_rule(attack_start: int | None, y_top: float | None = None) -> alt.Chart | None:
    if attack_start is None:
        return None
    marker = pd.DataFrame({"tick": [attack_start], "label": [f"attack starts (tick {attack_start})"]})
    rule = alt.Chart(marker).mark_rule(color=ATTACK_COLOR, strokeDash=[6, 4], strokeWidth=2).encode(
        x="tick:Q", tooltip=alt.Tooltip("label:N", title="marker"))
    text = alt.Chart(marker).mark_text(align="left", baseline="bottom", dx=-4, dy=-4, color=ATTACK_COLOR,
                                       fontWeight="bold").encode(
        x="tick:Q", y=alt.value(0), text="label:N")
    return rule + text


def lines_over_ticks(long: pd.DataFrame, *, y_title: str, attack_start: int | None, color_title: str,
                     percent: bool = True, colors: alt.Scale | None = None, dashed: Sequence[str] = (),
                     height: int = 260, chart_title: str | None = None,
                     legend_columns: int = 2, x_max: int | None = None) -> alt.LayerChart:
    """One line per ``series`` of ``value`` over ``tick``, with the attack start marked.

    Parameters
    ----------
    long : pandas.DataFrame
        Columns ``tick``, ``series`` and ``value`` (NaN where not measured).
    y_title, color_title : str
        Axis and legend titles.
    attack_start : int or None
        Draw a red dashed rule labelled "attack starts" at this tick.
    percent : bool, default True
        Format the y axis as percentages on [0, 1].
    colors : altair.Scale, optional
        Colour scale of the series.
    dashed : sequence of str
        Series drawn dashed (e.g. the no-attack baseline).
    legend_columns : int, default 2
        Legend entries per row (the legend sits below the chart).
    x_max : int, optional
        Last tick of the x axis (e.g. the run's final tick while it is still running).
    """
    data = long.dropna(subset=["value"]).copy()
    data["dashed"] = data["series"].isin(list(dashed))
    x_scale = _tick_scale(long["tick"], x_max)
    y_axis = alt.Axis(format="%", title=y_title) if percent else alt.Axis(title=y_title)
    y_scale = alt.Scale(domain=[0, 1]) if percent else alt.Scale(zero=True)
    color = alt.Color("series:N", title=color_title, scale=colors or alt.Undefined,
                      legend=alt.Legend(orient="bottom", labelLimit=260, columns=legend_columns))
    lines = alt.Chart(data).mark_line(strokeWidth=2.2).encode(
        x=alt.X("tick:Q", title="tick (simulated hour)", axis=alt.Axis(tickMinStep=1), scale=x_scale),
        y=alt.Y("value:Q", axis=y_axis, scale=y_scale),
        color=color,
        strokeDash=alt.condition("datum.dashed", alt.value([5, 3]), alt.value([1, 0])),
        tooltip=[alt.Tooltip("series:N", title=color_title), "tick:Q",
                 alt.Tooltip("value:Q", format=".1%" if percent else ",.1f", title=y_title)],
    )
    layers = [lines]
    rule = _attack_rule(attack_start)
    if rule is not None:
        layers.append(rule)
    chart = _sized(alt.layer(*layers), height)
    return chart.properties(title=chart_title) if chart_title else chart


def melt_metrics(frame: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """A per-tick frame as long form: ``tick``, ``series`` (metric title), ``value``.

    Examples
    --------
    >>> f = pd.DataFrame({"tick": [0], "attack_success_rate": [0.5], "collateral_rate": [0.1]})
    >>> melt_metrics(f, ["attack_success_rate", "collateral_rate"])["series"].tolist()
    ['Attack success', 'Collateral damage']
    """
    long = frame.melt(id_vars=["tick"], value_vars=list(metrics), var_name="metric", value_name="value")
    long["series"] = long["metric"].map(title)
    return long


def votes_over_ticks(frame: pd.DataFrame, attack_start: int | None, height: int = 220,
                     x_max: int | None = None) -> alt.LayerChart:
    """Stacked areas of honest and bot feedback votes per tick, the attack start marked."""
    data = frame[["tick", "honest_votes", "bot_votes"]].rename(
        columns={"honest_votes": "honest users", "bot_votes": "bot accounts"})
    long = data.melt(id_vars=["tick"], var_name="who", value_name="votes").dropna()
    area = alt.Chart(long).mark_area(opacity=0.75, interpolate="step-after").encode(
        x=alt.X("tick:Q", title="tick (simulated hour)", scale=_tick_scale(frame["tick"], x_max)),
        y=alt.Y("votes:Q", title="votes per tick", stack=True),
        color=alt.Color("who:N", title="votes from",
                        scale=alt.Scale(domain=["honest users", "bot accounts"], range=["#4c78a8", ATTACK_COLOR]),
                        legend=alt.Legend(orient="bottom")),
        order=alt.Order("who:N", sort="descending"),
        tooltip=["who:N", "tick:Q", "votes:Q"],
    )
    layers = [area]
    rule = _attack_rule(attack_start)
    if rule is not None:
        layers.append(rule)
    return _sized(alt.layer(*layers), height)


def grouped_bars(frame: pd.DataFrame, *, category: str, group: str, value: str, colors: alt.Scale | None = None,
                 percent: bool = True, height: int = 260, category_title: str = "",
                 group_title: str = "") -> alt.Chart:
    """Bars of ``value`` per ``category``, one bar per ``group`` side by side, values printed on top."""
    fmt = ".0%" if percent else ",.1f"
    base = alt.Chart(frame.dropna(subset=[value])).encode(
        x=alt.X(f"{category}:N", title=category_title, sort=list(dict.fromkeys(frame[category])),
                axis=alt.Axis(labelAngle=0, labelLimit=200)),
        xOffset=alt.XOffset(f"{group}:N", sort=list(dict.fromkeys(frame[group]))),
        color=alt.Color(f"{group}:N", title=group_title, scale=colors or alt.Undefined,
                        sort=list(dict.fromkeys(frame[group])), legend=alt.Legend(orient="bottom", labelLimit=260)),
        tooltip=[f"{category}:N", f"{group}:N", alt.Tooltip(f"{value}:Q", format=fmt)],
    )
    bars = base.mark_bar().encode(
        y=alt.Y(f"{value}:Q", title=None, axis=alt.Axis(format="%") if percent else alt.Undefined,
                scale=alt.Scale(domain=[0, 1]) if percent else alt.Undefined))
    text = base.mark_text(dy=-6, fontSize=11).encode(y=f"{value}:Q", text=alt.Text(f"{value}:Q", format=fmt))
    return _sized(bars + text, height)


def sweep_summary(rows: pd.DataFrame, x: str, metric: str) -> pd.DataFrame:
    """Mean, min, max and seed count of `metric` per (`x` value, defense).

    Examples
    --------
    >>> rows = pd.DataFrame({"x": [0.1, 0.1, 0.2], "defense": ["none"] * 3, "m": [0.2, 0.4, 0.9]})
    >>> s = sweep_summary(rows, "x", "m")
    >>> s["x"].tolist(), s["mean"].round(2).tolist(), s["low"].tolist(), s["high"].tolist(), s["seeds"].tolist()
    ([0.1, 0.2], [0.3, 0.9], [0.2, 0.9], [0.4, 0.9], [2, 1])
    """
    grouped = rows.dropna(subset=[metric]).groupby([x, "defense"], sort=True)[metric]
    out = grouped.agg(mean="mean", low="min", high="max", seeds="count").reset_index()
    return out


def sweep_heatmap(summary: pd.DataFrame, x: str, x_title: str, metric_title: str, percent: bool = True,
                  height: int | None = None) -> alt.Chart:
    """Heatmap of the mean metric per swept value (columns) and defense (rows), values printed."""
    fmt = ".0%" if percent else ",.2f"
    height = height or max(120, 46 * summary["defense"].nunique())
    base = alt.Chart(summary).encode(
        x=alt.X(f"{x}:O", title=x_title, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("defense:N", title="defense chain", axis=alt.Axis(labelLimit=220)),
    )
    heat = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.Color("mean:Q", title=metric_title,
                        scale=alt.Scale(scheme="reds", domain=[0, 1] if percent else alt.Undefined),
                        legend=alt.Legend(format="%" if percent else alt.Undefined, orient="right")),
        tooltip=[alt.Tooltip(f"{x}:O", title=x_title), "defense:N",
                 alt.Tooltip("mean:Q", format=fmt, title=f"mean {metric_title}"),
                 alt.Tooltip("low:Q", format=fmt, title="lowest seed"),
                 alt.Tooltip("high:Q", format=fmt, title="highest seed"), "seeds:Q"],
    )
    text = base.mark_text(fontSize=13, fontWeight="bold").encode(
        text=alt.Text("mean:Q", format=fmt),
        color=alt.condition("datum.mean > 0.55", alt.value("white"), alt.value("black")) if percent
        else alt.value("black"))
    return _sized(heat + text, height)


def sweep_lines(summary: pd.DataFrame, x: str, x_title: str, metric_title: str, colors: alt.Scale | None = None,
                percent: bool = True, height: int = 300, quantitative: bool = True) -> alt.LayerChart:
    """Mean metric against the swept value, one line per defense, the band spanning the seeds.

    ``quantitative=False`` spaces the swept values evenly (for names such as attack strategies).
    """
    fmt = ".1%" if percent else ",.2f"
    y_axis = alt.Axis(format="%", title=metric_title) if percent else alt.Axis(title=metric_title)
    color = alt.Color("defense:N", title="defense chain", scale=colors or alt.Undefined,
                      legend=alt.Legend(orient="bottom", labelLimit=260, symbolType="stroke", symbolOpacity=1,
                                        symbolStrokeWidth=3))
    x_field = alt.X(f"{x}:{'Q' if quantitative else 'O'}", title=x_title)
    y_scale = alt.Scale(domain=[0, 1]) if percent else alt.Undefined
    base = alt.Chart(summary).encode(x=x_field, color=color)
    band = base.mark_area(opacity=0.18).encode(y=alt.Y("low:Q", axis=y_axis, scale=y_scale), y2="high:Q")
    line = base.mark_line(strokeWidth=2.2, point=alt.OverlayMarkDef(size=60)).encode(
        y="mean:Q",
        tooltip=["defense:N", alt.Tooltip(f"{x}:{'Q' if quantitative else 'O'}", title=x_title),
                 alt.Tooltip("mean:Q", format=fmt, title=f"mean {metric_title}"),
                 alt.Tooltip("low:Q", format=fmt, title="lowest seed"),
                 alt.Tooltip("high:Q", format=fmt, title="highest seed"), "seeds:Q"])
    return _sized(alt.layer(band, line), height)


def trust_histogram(accounts: pd.DataFrame, height: int = 240, bins: int = 20) -> alt.Chart:
    """Final trust of honest accounts and bots, as overlaid share-of-group histograms."""
    data = accounts.dropna(subset=["trust"]).copy()
    data["who"] = np.where(data["is_bot"], "bot accounts", "honest users")
    edges = np.linspace(0.0, 1.0, bins + 1)
    data["bin"] = np.clip(np.digitize(data["trust"], edges) - 1, 0, bins - 1)
    counts = data.groupby(["who", "bin"]).size().rename("accounts").reset_index()
    counts["share"] = counts["accounts"] / counts.groupby("who")["accounts"].transform("sum")
    counts["lo"] = edges[counts["bin"]]
    counts["hi"] = edges[counts["bin"] + 1]
    chart = alt.Chart(counts).mark_bar(opacity=0.65, binSpacing=0).encode(
        x=alt.X("lo:Q", title="final trust (0 = distrusted, 1 = fully trusted)", scale=alt.Scale(domain=[0, 1])),
        x2="hi:Q",
        y=alt.Y("share:Q", title="share of the group", axis=alt.Axis(format="%"), stack=None),
        y2=alt.datum(0),
        color=alt.Color("who:N", title="accounts",
                        scale=alt.Scale(domain=["honest users", "bot accounts"], range=["#4c78a8", ATTACK_COLOR]),
                        legend=alt.Legend(orient="bottom")),
        tooltip=["who:N", alt.Tooltip("lo:Q", title="trust from", format=".2f"),
                 alt.Tooltip("hi:Q", title="trust to", format=".2f"), "accounts:Q",
                 alt.Tooltip("share:Q", format=".1%")],
    )
    return _sized(chart, height)


def caught_over_ticks(accounts: pd.DataFrame, ticks: int, attack_start: int | None,
                      height: int = 240) -> alt.LayerChart:
    """Cumulative share of bots flagged by each tick (and of honest accounts wrongly flagged)."""
    rows = []
    for who, part in (("bots caught", accounts[accounts["is_bot"]]),
                      ("honest users wrongly flagged", accounts[~accounts["is_bot"]])):
        total = len(part)
        flagged = part["flagged_tick"].dropna().to_numpy()
        for tick in range(ticks):
            rows.append({"tick": tick, "series": who,
                         "value": float((flagged <= tick).sum()) / total if total else np.nan})
    long = pd.DataFrame(rows, columns=["tick", "series", "value"])
    scale = alt.Scale(domain=["bots caught", "honest users wrongly flagged"], range=["#2ca02c", "#ff7f0e"])
    return lines_over_ticks(long, y_title="share of the group flagged", attack_start=attack_start,
                            color_title="", colors=scale, height=height)


OUTCOME_COLORS = {"caught": "#2ca02c", "missed": ATTACK_COLOR, "wrongly flagged": "#ff7f0e"}


def outcome_bars(counts: pd.DataFrame, height: int = 110) -> alt.Chart:
    """Horizontal stacked bars: bots caught / missed and honest users wrongly flagged.

    ``counts`` has columns ``group``, ``outcome`` (keys of :data:`OUTCOME_COLORS`)
    and ``accounts``; the legend names each outcome with its count.
    """
    data = counts.copy()
    data["accounts"] = data["accounts"].astype(int)
    data["legend"] = data["outcome"] + ": " + data["accounts"].astype(str)
    scale = alt.Scale(domain=data["legend"].tolist(), range=[OUTCOME_COLORS[o] for o in data["outcome"]])
    chart = alt.Chart(data).mark_bar(height=30).encode(
        y=alt.Y("group:N", title=None, sort=["bots", "honest users"]),
        x=alt.X("accounts:Q", title="accounts", stack="zero"),
        color=alt.Color("legend:N", title="", scale=scale, legend=alt.Legend(orient="bottom")),
        order=alt.Order("outcome:N"),
        tooltip=["group:N", "outcome:N", "accounts:Q"],
    )
    return _sized(chart, height)
