"""Launch: start a run or a comparison in the background and follow its progress."""

from pathlib import Path

import streamlit as st

from dashboard import data
from dashboard.components import labels, widgets
from dashboard.launcher import LaunchError, scenario_files

widgets.header("Launch", "Start an experiment from a scenario file, in the background: it is the same "
               "`poisonlab run` / `poisonlab compare` you would type, writing to this dashboard's database. "
               "Its progress shows below, and its charts on the Live run and Compare pages.")
if st.session_state.get(widgets.LIVE_FOCUS_KEY):
    st.switch_page(Path(__file__).resolve().parent / "live.py")
url = widgets.db()
launcher = data.launcher(url)
DEFAULT = "(built-in default scenario)"
files = scenario_files(Path.cwd(), Path(__file__).resolve().parents[2])
options = [DEFAULT] + [str(p) for p in files]

with st.form("launch_form"):
    mode = st.radio("What to start", ["compare", "run"], horizontal=True, key="launch_mode",
                    format_func={"compare": "a comparison of defense chains (plus a no-attack baseline)",
                                 "run": "one run"}.__getitem__)
    scenario = st.selectbox("Scenario", options, key="launch_scenario",
                            format_func=lambda p: p if p == DEFAULT else Path(p).name,
                            help="scenarios/*.toml next to the dashboard or in the working directory.")
    left, right = st.columns([3, 1])
    defenses = left.text_input(
        "Defenses", "none,majority,reputation", key="launch_defenses",
        help="For a comparison: chains separated by commas, members of one chain joined by + "
             "(e.g. none,majority+reputation). For one run: one chain (e.g. reputation).")
    seed = right.number_input("Seed", min_value=0, value=7, step=1, key="launch_seed")
    overrides = st.text_area(
        "Overrides (one key=value per line, as with --set)", "ticks=120\nattack.start_tick=30",
        key="launch_overrides", height=110,
        help="Any scenario key, e.g. population.bot_fraction=0.1 or attack.campaign_emails_per_tick=40.")
    submitted = st.form_submit_button("Start", type="primary", key="launch_start")

if submitted:
    try:
        launch = launcher.start(mode, None if scenario == DEFAULT else scenario, defenses, int(seed), overrides)
    except LaunchError as exc:
        st.error(f"Not started: {exc}", icon=":material/block:")
    else:
        st.toast(f"Started: {launch.command}")


def watch(run_id: str) -> None:
    st.session_state[widgets.LIVE_FOCUS_KEY] = run_id


@st.fragment(run_every=data.TTL_S if any(l.status == "running" for l in launcher.launches) else None)
def progress() -> None:
    launches = launcher.launches
    if not launches:
        st.caption("Nothing started from this dashboard yet.")
        return
    runs = data.runs(url).to_dict("records")
    st.subheader("Started from this dashboard")
    for launch in launches:
        with st.container(border=True):
            icon = labels.STATUS_ICONS.get(launch.status, "")
            st.markdown(f"{icon} **{launch.mode}** #{launch.launch_id} · {launch.status} · "
                        f"started {launch.started_at:%H:%M:%S} UTC")
            st.code(launch.command, language="bash", wrap_lines=True)
            if launch.status == "failed":
                st.error(launch.error_line(), icon=":material/error:")
            mine = sorted((r for r in runs if launch.matches(r)), key=lambda r: r["created_at"])
            mine = mine[:launch.expected_runs]
            for run in mine:
                done = len(data.timeline(url, run["run_id"]))
                what = labels.chain_label({"defense": run["defense"],
                                           "scenario": {"attack": {"strategy": run["attack_strategy"]}}})
                cols = st.columns([4, 1])
                finished = run["status"] == "finished"
                cols[0].progress(1.0 if finished else min(1.0, done / launch.ticks),
                                 text=f"{what}: {run['status']}, {done} of {launch.ticks} ticks stored")
                cols[1].button("Watch live", key=f"launch_watch_{run['run_id']}", on_click=watch,
                               args=(run["run_id"],))
            waiting = launch.expected_runs - len(mine)
            if waiting > 0 and launch.status == "running":
                st.caption(f"{waiting} run(s) waiting to start (warming up the filter, or queued for a worker).")
    if st.session_state.get(widgets.LIVE_FOCUS_KEY):
        st.rerun()                      # the page top switches to the Live run page


progress()
