"""Each staged table checked against its Pandera contract (`schemas.py`) before it is written:
a row breaking the contract is rejected with the check it broke, and so are the rows left
pointing at a client the contract rejected."""

from __future__ import annotations

import pandas as pd

from ploomes_cx.staging.build import Staged
from ploomes_cx.staging.rejects import Rejects
from ploomes_cx.staging.schemas import MODELS, split_valid, validate


def apply_contracts(staged: Staged, entities: list[str], run_id: str) -> dict[str, pd.DataFrame]:
    """Validate each table; rows breaking a contract, and rows left pointing at them, are rejected."""
    tables: dict[str, pd.DataFrame] = {}
    rejects = Rejects(run_id)
    dropped_clients: set[str] = set()  # clients the contracts rejected
    for entity in entities:
        frame, before = getattr(staged, entity), len(getattr(staged, entity))
        if entity != "clients" and dropped_clients:
            # staging points every row at a staged client (the client_exists check verifies it);
            # only the clients rejected here leave rows without one
            orphan = frame["client_external_id"].isin(dropped_clients)
            rejects.add(
                f"stg_{entity}", frame, orphan, "client", frame["client_external_id"], "client_rejected"
            )
            frame = frame[~orphan].reset_index(drop=True)
        valid, cases = split_valid(MODELS[entity], frame)
        if len(cases):
            first = cases.drop_duplicates("index").set_index("index")
            first.index = first.index.astype(int)
            broken = frame.index.isin(first.index)
            rejects.add(
                f"stg_{entity}",
                frame,
                pd.Series(broken, index=frame.index),
                first["column"].astype(str).reindex(frame.index),
                first["failure_case"].reindex(frame.index),
                ("contract:" + first["check"].astype(str)).reindex(frame.index),
            )
        tables[entity] = valid.reset_index(drop=True)
        if entity == "clients" and len(valid) < before:
            dropped_clients = set(frame["external_id"]) - set(valid["external_id"])
        dropped = before - len(tables[entity])
        staged.counts[entity]["staged"] -= dropped
        staged.counts[entity]["rejected"] += dropped
    rejected = (
        pd.concat([staged.rejected, rejects.frame()], ignore_index=True) if rejects.parts else staged.rejected
    )
    tables["rejected"] = validate(MODELS["rejected"], rejected.reset_index(drop=True))
    tables["duplicate_clusters"] = validate(MODELS["duplicate_clusters"], staged.clusters)
    return tables
