"""Alerts: one message per incident of a mapping's runs, to a Slack-compatible webhook and/or e-mail.

`config.py` is the mapping's `alerts:` key, `messages.py` turns an incident into text,
`incidents.py` reads a finished run's incidents from the instance and the ledger, `senders.py`
does the HTTP and SMTP I/O, `sent.py` remembers what was sent, `sensors.py` wires it to Dagster,
and `cli.py` lets the commands that execute runs in their own process (`sync`, `reconcile`,
`listen`) report them as soon as they end.
See docs/alerts.md.
"""
