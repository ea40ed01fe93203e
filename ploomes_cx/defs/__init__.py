"""Dagster's defs folder: each subfolder's `defs.yaml` declares a component (see `ploomes_cx.component`)."""
