"""Raw layer: Ploomes records exactly as the API returned them, one partitioned table per entity."""
