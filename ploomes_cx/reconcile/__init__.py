"""Deletes (mapping-and-cli.md §4.2): find the records CustomerX holds from us whose Ploomes record
is gone, and apply the mapping's `deletes.policy` to them.

`origins.py` says which Ploomes record each of ours comes from; `listing.py` asks Ploomes which
Ids still exist; `decide.py` turns both into actions and holds the `max_share` guard;
`apply.py` makes the calls and remembers them; `tombstones.py` keeps what was found gone, so
staging stops staging it; `assets.py` is the Dagster asset, job and weekly schedule.
"""
