"""Connecting an account (mapping-and-cli.md §5): `check` tries a mapping's credentials and fields
against the live APIs, `fields` lists the account's custom fields, `init` writes a mapping."""
