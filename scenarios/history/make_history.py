"""Make events.csv, the example history: simulate truth.yaml with funnelsim's agent
engine, then write it as an analytics export would: its own column names (user, ts,
event), raw event names (see stage_map.yaml), times to the second, no record of
drop-off, and session_start rows that carry no stage.

Run from this folder: ``python make_history.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml

from funnelsim.scenario import load_scenario, run

RAW = {v: k for k, v in yaml.safe_load(open("stage_map.yaml")).items() if v}

result = run(load_scenario("truth.yaml"), record_journeys=True)
log = result.journeys["baseline"]
rng = np.random.default_rng(7)
sessions = log.sample(frac=0.3, random_state=7).assign(stage="session_start")
sessions["timestamp"] -= pd.to_timedelta(rng.uniform(0, 600, len(sessions)), unit="s")
log = pd.concat([log, sessions]).sort_values(["timestamp", "customer_id"], kind="stable")
export = pd.DataFrame(
    {
        "user": "u" + log["customer_id"].astype(str).str.zfill(5),
        "ts": log["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S"),
        "event": log["stage"].map(lambda s: RAW.get(s, s)),
        "source": log["channel"],
    }
)
export.to_csv("events.csv", index=False)
print(f"wrote {len(export):,} rows of {export['user'].nunique():,} customers to events.csv")
