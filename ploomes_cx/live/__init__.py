"""Live sync from Ploomes webhooks (mapping-and-cli.md §4.3): the event store, the receiver, the live job."""
