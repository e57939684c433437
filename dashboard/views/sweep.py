"""Sweep: attack success by swept scenario value × defense chain, with the spread over seeds."""

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.components import charts, labels, widgets

widgets.header("Sweep", "How does each defense hold up as the attack gets stronger? Each cell is the mean over "
               "seeds of one swept scenario value under one defense chain; the bands in the line chart span "
               "the lowest to the highest seed.")
url = widgets.db()
sweeps = data.sweeps(url)
if not sweeps:
    st.info("No sweeps yet — run `poisonlab sweep [SCENARIO.toml] --grid population.bot_fraction=0.01,0.05,0.1 "
            "--defenses none,majority,reputation --seeds 3` with the same `--db`, and its cells appear here as "
            "they finish.", icon=":material/info:")
    if sweeps is None:
        st.caption("This results database has no sweep tables yet (they come with `poisonlab sweep`).")
    st.stop()

STATUS = labels.STATUS_ICONS
by_id = {s["sweep_id"]: s for s in sweeps}
names = {sid: f"{STATUS.get(s.get('status'), '')} {str(s.get('created_at', ''))[:16].replace('T', ' ')} · "
         f"{s.get('name')} · {data.describe_grid(s.get('grid'))} · {s.get('cells_done', '?')}/"
         f"{s.get('cells_total', '?')} cells" for sid, s in by_id.items()}
sweep_id = st.selectbox("Sweep", list(names), format_func=names.__getitem__, key="sweep_id",
                        help="Sweeps in this database, newest first.")
sweep = by_id[sweep_id]
running = sweep.get("status") == "running"


@st.fragment(run_every=data.TTL_S if running else None)
def sweep_view() -> None:
    current = next((s for s in data.sweeps(url) or [] if s["sweep_id"] == sweep_id), sweep)
    if running and current.get("status") != "running":
        st.rerun()
    total, done = current.get("cells_total") or 0, current.get("cells_done") or 0
    seeds = current.get("seeds")
    seeds = ", ".join(map(str, seeds)) if isinstance(seeds, (list, tuple)) else seeds
    st.caption(f"Defenses: {', '.join(map(str, current.get('defenses') or []))} · seeds: {seeds} · "
               f"status: {current.get('status')}")
    if total:
        st.progress(min(1.0, done / total), text=f"{done} of {total} cells done")
    frame = data.sweep_frame(data.sweep_runs(url, sweep_id) or [])
    if "status" in frame:
        frame = frame[frame["status"] == "finished"]
    params = [c.removeprefix("param:") for c in frame.columns if c.startswith("param:")]
    if frame.empty or not params:
        st.info("No finished cells yet: they appear here as the sweep goes on.", icon=":material/hourglass_top:")
        return
    choose = st.columns(2)
    with choose[1] if len(params) > 1 else st.container():
        swept = st.selectbox("Swept value on the x axis", params, key="sweep_x") if len(params) > 1 else params[0]
    metric_keys = [k for k in labels.METRICS if k in frame.columns]
    with choose[0]:
        metric = st.selectbox("Metric", metric_keys, key="sweep_metric", format_func=labels.title,
                              index=metric_keys.index("attack_success_rate")
                              if "attack_success_rate" in metric_keys else 0)
    for other in params:
        if other != swept:
            values = sorted(frame[f"param:{other}"].dropna().unique().tolist())
            fixed = st.selectbox(f"Hold {other} at", values, key=f"sweep_fix_{other}")
            frame = frame[frame[f"param:{other}"] == fixed]
    rows = frame.rename(columns={f"param:{swept}": "x"})
    rows[metric] = pd.to_numeric(rows[metric], errors="coerce")
    summary = charts.sweep_summary(rows, "x", metric)
    percent = metric in labels.PERCENT_METRICS
    numeric = pd.api.types.is_numeric_dtype(summary["x"])
    title_ = labels.title(metric)
    colors = charts.series_colors(sorted(summary["defense"].unique()))
    st.subheader(f"{title_} by {swept} and defense")
    st.caption(f"{labels.meaning(metric).capitalize()}; mean over seeds, final quarter of the ticks.")
    st.altair_chart(charts.sweep_heatmap(summary, "x", swept, title_, percent=percent), width="stretch",
                    key="sweep_heatmap")
    st.subheader(f"{title_} as {swept} grows")
    st.caption("Line: mean over seeds; band: lowest to highest seed.")
    st.altair_chart(charts.sweep_lines(summary, "x", swept, title_, colors=colors, percent=percent,
                                       quantitative=numeric), width="stretch", key="sweep_lines")
    with st.expander("Cells as a table"):
        st.dataframe(summary.rename(columns={"x": swept, "mean": f"mean {title_}", "low": "lowest seed",
                                             "high": "highest seed"}), hide_index=True, width="stretch")


sweep_view()
