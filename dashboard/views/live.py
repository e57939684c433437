"""Live run: one run's metrics over ticks, the attack start marked, refreshing while it runs."""

import streamlit as st

from dashboard import data
from dashboard.components import charts, labels, widgets

widgets.header("Live run", "Watch one experiment tick by tick: how much of the attacker's campaign reaches "
               "inboxes, and how much legitimate mail is pushed to junk. The red dashed line marks the start "
               "of the attack; while a run is in progress this page refreshes by itself.")
url = widgets.db()
runs = data.runs(url)
if runs.empty:
    widgets.no_runs()
    st.stop()

picked, smoothing = st.columns([3, 1])
with picked:
    run_id = widgets.run_picker(runs, key="live_run", focus=st.session_state.pop(widgets.LIVE_FOCUS_KEY, None))
with smoothing:
    window = st.slider("Smoothing (ticks)", 1, 24, 3, key="live_smooth",
                       help="Rolling mean over this many ticks; 1 shows the raw per-tick values.")
first = data.run(url, run_id)
if first is None:
    st.warning("This run is no longer in the database.")
    st.stop()


@st.fragment(run_every=data.TTL_S if first["status"] == "running" else None)
def live_view() -> None:
    doc = data.run(url, run_id)
    if doc is None or doc["status"] != first["status"]:
        st.rerun()                      # finished (or gone): redraw the page, which stops the refresh
    scenario = doc["scenario"]
    ticks = data.timeline(url, run_id)
    total = int(scenario.get("ticks", len(ticks)))
    done = int(ticks["tick"].max()) + 1 if len(ticks) else 0
    start = labels.attack_start(doc)
    attack = scenario.get("attack", {})
    population = scenario.get("population", {})
    st.markdown(
        f"**{scenario.get('name')}** · {population.get('users', '?'):,} users, "
        f"{100 * population.get('bot_fraction', 0):.0f}% bots · "
        + (f"attack **{attack.get('strategy')}** from tick {start} on {', '.join(attack.get('targets', []))}"
           if start is not None else "**no attack** (baseline)")
        + f" · defense **{doc['defense']}** · seed {doc['seed']}")

    if doc["status"] == "running":
        st.progress(min(1.0, done / total) if total else 0.0,
                    text=f"running: {done} of {total} ticks stored (runs write their ticks every 10 ticks)")
        recent = ticks.tail(10)
        shown = {k: recent[k].mean() for k in ("attack_success_rate", "collateral_rate", "clean_accuracy",
                                                "label_precision")}
        st.caption("Figures below: mean over the last 10 stored ticks.")
    else:
        if doc["status"] == "failed":
            st.error(f"This run stopped early (status failed) after {done} of {total} ticks.", icon=":material/error:")
        shown = doc.get("metrics") or {}
        st.caption(f"Run {doc['status']}. Figures below: the final quarter of the ticks, as in the result table.")
    widgets.metric_tiles(shown, ("attack_success_rate", "collateral_rate", "clean_accuracy", "label_precision"))

    if ticks.empty:
        st.info("No ticks stored yet: the first ten arrive shortly.")
        return
    smoothed = charts.smooth(ticks, data.TIMELINE_KEYS, window)
    left, right = st.columns(2)
    with left:
        st.subheader("Is the attack landing?")
        st.caption("Campaign mail delivered to the inbox, and targeted legitimate mail sent to junk. "
                   "Lower is better.")
        st.altair_chart(charts.lines_over_ticks(
            charts.melt_metrics(smoothed, ["attack_success_rate", "collateral_rate"]), y_title="share of emails",
            attack_start=start, color_title="", x_max=total - 1, colors=charts.named_colors(
                {"Attack success": charts.ATTACK_COLOR, "Collateral damage": "#ff7f0e"})),
            width="stretch", key="live_attack_chart")
    with right:
        st.subheader("Is the filter still healthy?")
        st.caption("Accuracy on clean mail, correctness of the training labels, and honest feedback the "
                   "defense discarded.")
        st.altair_chart(charts.lines_over_ticks(
            charts.melt_metrics(smoothed, ["clean_accuracy", "label_precision", "honest_vote_loss"]),
            y_title="share", attack_start=start, color_title="", x_max=total - 1, colors=charts.named_colors(
                {"Clean accuracy": "#1f77b4", "Label precision": "#2ca02c", "Honest votes lost": "#7f7f7f"})), width="stretch", key="live_health_chart")
    st.subheader("Who is giving feedback?")
    st.caption("Spam / not-spam reports per tick from honest users and from the bot ring.")
    st.altair_chart(charts.votes_over_ticks(ticks, start, x_max=total - 1), width="stretch", key="live_votes_chart")


live_view()
