"""Compare: the defense chains of one ``poisonlab compare`` side by side (same scenario and seed)."""

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.components import charts, labels, widgets

widgets.header("Compare defenses", "The same scenario, seed and mail under several defense chains, plus a "
               "no-attack baseline (grey, dashed): which defense keeps the attacker's campaign out of the inbox "
               "without junking legitimate mail?")
url = widgets.db()
groups = data.groups_frame(data.runs(url))
if groups.empty:
    widgets.no_runs("comparisons")
    st.stop()

STATUS = labels.STATUS_ICONS
names = {g["group_id"]: f"{STATUS.get(g['status'], '')} {str(g['created_at'])[:16]} · {g['name']} · seed {g['seed']} "
         f"· {g['defenses']} ({g['runs']} runs)" for g in groups.to_dict("records")}
picked, smoothing = st.columns([3, 1])
with picked:
    group_id = st.selectbox("Comparison", list(names), format_func=names.__getitem__, key="compare_group",
                            help="Each `poisonlab compare` stores its runs as one comparison; newest first.")
with smoothing:
    window = st.slider("Smoothing (ticks)", 1, 24, 6, key="compare_smooth",
                       help="Rolling mean over this many ticks; 1 shows the raw per-tick values.")
running = groups.set_index("group_id").at[group_id, "status"] == "running"

OVERVIEW = ("attack_success_rate", "collateral_rate", "clean_accuracy", "label_precision", "honest_vote_loss")
TABLE = OVERVIEW + ("clean_fpr", "clean_fnr", "bot_precision", "bot_recall", "detection_delay_ticks",
                    "accounts_flagged")
PANELS = (("attack_success_rate", "Attack success: campaign mail in the inbox (lower is better)"),
          ("collateral_rate", "Collateral: targeted legitimate mail in junk (lower is better)"),
          ("clean_accuracy", "Clean accuracy of the filter (higher is better)"),
          ("label_precision", "Label precision: correct training labels (higher is better)"))


@st.fragment(run_every=data.TTL_S if running else None)
def comparison() -> None:
    docs = sorted(data.group(url, group_id), key=lambda d: not labels.is_baseline(d))
    if not docs:
        st.warning("This comparison is no longer in the database.")
        return
    if running and all(d["status"] != "running" for d in docs):
        st.rerun()                      # all done: redraw, which stops the refresh
    names_ = [labels.chain_label(d) for d in docs]
    colors = charts.series_colors(names_)
    start = next((labels.attack_start(d) for d in docs if labels.attack_start(d) is not None), None)
    unfinished = [n for n, d in zip(names_, docs) if d["status"] != "finished"]
    if unfinished:
        st.info(f"Still running or failed: {', '.join(unfinished)}. Final figures appear when a run finishes; "
                "the curves below grow as ticks are stored.", icon=":material/hourglass_top:")
    headline = labels.compare_headline([d for d in docs if d["status"] == "finished"])
    if headline:
        st.success(headline, icon=":material/shield:")

    st.subheader("Final results")
    st.caption("Rates over the final quarter of the ticks, when the attack is in full swing.")
    bars = pd.DataFrame([{"metric": labels.title(k), "run": n, "value": (d.get("metrics") or {}).get(k)}
                         for k in OVERVIEW for n, d in zip(names_, docs)])
    bars["value"] = pd.to_numeric(bars["value"], errors="coerce")
    st.altair_chart(charts.grouped_bars(bars, category="metric", group="run", value="value", colors=colors,
                                        group_title="defense chain"), width="stretch", key="compare_bars")
    with st.expander("All final metrics as a table"):
        st.dataframe(widgets.metric_table(docs, names_, TABLE), hide_index=True, width="stretch")

    st.subheader("Over time")
    st.caption(f"One line per defense chain ({window}-tick rolling mean); the red dashed line marks the attack "
               "start.")
    timelines = {n: charts.smooth(data.timeline(url, d["run_id"]), data.TIMELINE_KEYS, window)
                 for n, d in zip(names_, docs)}
    cols = st.columns(2)
    for i, (key, heading) in enumerate(PANELS):
        long = pd.concat([pd.DataFrame({"tick": t["tick"], "series": n, "value": t[key]})
                          for n, t in timelines.items()], ignore_index=True)
        with cols[i % 2]:
            st.markdown(f"**{heading}**")
            st.altair_chart(charts.lines_over_ticks(long, y_title=labels.title(key), attack_start=start,
                                                    color_title="defense chain", colors=colors,
                                                    dashed=[charts.BASELINE_LABEL], height=230),
                            width="stretch", key=f"compare_{key}")


comparison()
