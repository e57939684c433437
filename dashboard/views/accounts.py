"""Accounts: how far the defense trusts honest users and bots, and when each bot was caught."""

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.components import charts, labels, widgets

widgets.header("Accounts", "Who did the defense stop trusting, and how fast? A good defense flags the bot ring "
               "soon after its first malicious votes while honest users keep their say.")
url = widgets.db()
runs = data.runs(url)
attacked = runs[runs["attack_strategy"] != "none"]
if attacked.empty:
    widgets.no_runs("runs with an attack")
    st.stop()
caught = attacked[attacked["metrics"].map(lambda m: (m.get("bot_recall") or 0) > 0)]
run_id = widgets.run_picker(attacked, key="accounts_run", prefer_running=False,
                            default=None if caught.empty else caught["run_id"].iloc[0])
doc = data.run(url, run_id)
if doc is None:
    st.warning("This run is no longer in the database.")
    st.stop()
start = labels.attack_start(doc)
metrics = doc.get("metrics") or {}
if doc["status"] != "finished":
    st.info(f"This run is {doc['status']}: account figures are final only when it has finished.", icon=":material/hourglass_top:")
widgets.metric_tiles(metrics, ("bot_recall", "bot_precision", "detection_delay_ticks", "honest_vote_loss"))

outcomes = data.account_outcomes(url, run_id)
if outcomes is not None and not outcomes.empty:
    ticks = int(doc["scenario"].get("ticks", 0))
    left, right = st.columns(2)
    with left:
        st.subheader("Trust at the end of the run")
        st.caption("Share of honest users and of bots at each final trust level: the further apart, the better "
                   "the defense tells them apart.")
        if outcomes["trust"].notna().any():
            st.altair_chart(charts.trust_histogram(outcomes), width="stretch", key="accounts_trust")
        else:
            st.info(f"The chain `{doc['defense']}` keeps no per-account trust.")
    with right:
        st.subheader("When were bots caught?")
        st.caption("Share of all bots flagged by each tick, and of honest users flagged by mistake.")
        st.altair_chart(charts.caught_over_ticks(outcomes, ticks, start), width="stretch", key="accounts_caught")
    bots = outcomes[outcomes["is_bot"]].copy()
    bots["delay"] = bots["flagged_tick"] - bots["first_malicious_tick"]
    honest = outcomes[~outcomes["is_bot"]]
    st.subheader("Bots caught by the end")
    caught_n = int(bots["flagged_tick"].notna().sum())
    st.caption(f"{len(bots)} bots among {len(outcomes)} accounts; counted from the stored per-account outcomes.")
    st.altair_chart(charts.outcome_bars(pd.DataFrame([
        {"group": "bots", "outcome": "caught", "accounts": caught_n},
        {"group": "bots", "outcome": "missed", "accounts": len(bots) - caught_n},
        {"group": "honest users", "outcome": "wrongly flagged", "accounts": int(honest["flagged_tick"].notna().sum())},
    ])), width="stretch", key="accounts_outcomes")
    clusters = outcomes.dropna(subset=["cluster"])
    st.subheader("Detected clusters")
    if clusters.empty:
        st.caption(f"No defense in the chain `{doc['defense']}` reports clusters of coordinated accounts, and the "
                   "results database stores no cluster per account yet.")
    else:
        summary = clusters.groupby("cluster").agg(accounts=("account_id", "count"), bots=("is_bot", "sum"),
                                                  first_flag=("flagged_tick", "min")).reset_index()
        summary["purity"] = summary["bots"] / summary["accounts"]
        st.dataframe(summary, hide_index=True, width="stretch")
    st.subheader("Each bot")
    st.caption("When each bot first voted maliciously, when the defense flagged it, and its final trust; "
               "empty cells: never happened (or no trust kept).")
    st.dataframe(bots[["account_id", "trust", "first_malicious_tick", "flagged_tick", "delay"]]
                 .sort_values(["flagged_tick", "account_id"], na_position="last"),
                 hide_index=True, width="stretch", key="accounts_bots", column_config={
                     "account_id": "account",
                     "trust": st.column_config.NumberColumn("final trust", format="%.2f"),
                     "first_malicious_tick": st.column_config.NumberColumn("first malicious vote (tick)"),
                     "flagged_tick": st.column_config.NumberColumn("flagged (tick)"),
                     "delay": st.column_config.NumberColumn("delay (ticks)")})
else:
    st.warning("Per-account outcomes (each account's final trust, its cluster and the tick it was flagged) are "
               "not stored in this database yet, so trust distributions and per-bot catch times cannot be shown. "
               "Below is what the run's summary metrics tell.", icon=":material/warning:")
    derived = data.derived_accounts(doc)
    counts = pd.DataFrame([
        {"group": "bots", "outcome": "caught", "accounts": derived["caught"]},
        {"group": "bots", "outcome": "missed", "accounts": derived["missed"]},
        {"group": "honest users", "outcome": "wrongly flagged", "accounts": derived["wrongly_flagged"]},
    ]).dropna()
    left, right = st.columns(2)
    with left:
        st.subheader("Bots caught by the end")
        st.caption(f"{derived['bots']} bots among {derived['bots'] + derived['honest'] if derived['bots'] is not None else '?'} "
                   "accounts (from the scenario); caught and wrongly flagged derived from bot recall and the "
                   "number of accounts flagged.")
        if counts.empty:
            st.info("This run recorded no detection metrics.")
        else:
            st.altair_chart(charts.outcome_bars(counts), width="stretch", key="accounts_outcomes")
    with right:
        st.subheader("Feedback from honest users and bots")
        st.caption("Votes per tick; the red dashed line marks the start of the attack.")
        st.altair_chart(charts.votes_over_ticks(data.timeline(url, run_id), start), width="stretch",
                        key="accounts_votes")
    if doc.get("group_id"):
        peers = [d for d in data.group(url, doc["group_id"]) if not labels.is_baseline(d)]
        if len(peers) > 1:
            st.subheader("Detection across the defenses of this comparison")
            st.caption("Bot recall: share of bots flagged; bot precision: share of flagged accounts that are bots.")
            bars = pd.DataFrame([{"metric": labels.title(k), "run": d["defense"],
                                  "value": (d.get("metrics") or {}).get(k)}
                                 for k in ("bot_recall", "bot_precision") for d in peers])
            bars["value"] = pd.to_numeric(bars["value"], errors="coerce")
            st.altair_chart(charts.grouped_bars(bars, category="metric", group="run", value="value",
                                                colors=charts.series_colors([d["defense"] for d in peers]),
                                                group_title="defense chain", height=220),
                            width="stretch", key="accounts_peers")
