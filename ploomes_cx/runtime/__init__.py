"""Runtime plumbing every layer leans on: the state folder and instance config, request pacing and
retries, the DuckDB IO manager, the API-account base of both resources, housekeeping of runs."""
