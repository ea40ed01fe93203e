"""`ploomes-cx webhooks register|unregister` against the sandbox's `/Webhooks` (§4.3), through the CLI."""

from __future__ import annotations

import httpx

from ploomes_cx.cli import main
from ploomes_cx.sandbox import PloomesSandbox
from ploomes_cx_tests.conftest import SECRET_KEY, point_at, write_mapping

URL = "https://sync.example.com/ploomes/webhook"
KEY = "whk-SECRET-4417"


def _hooks(ploomes: PloomesSandbox) -> set[tuple[int, int, str]]:
    return {(h["EntityId"], h["ActionId"], h["CallbackUrl"]) for h in ploomes.webhooks.hooks.values()}


def _names(ploomes: PloomesSandbox) -> set[tuple[str, str]]:
    """The registered (entity, action) pairs by the sandbox's names, whatever their numbers."""
    entity = {v: k for k, v in ploomes.webhooks.entities.items()}
    action = {v: k for k, v in ploomes.webhooks.actions.items()}
    return {(entity[e], action[a]) for e, a, url in _hooks(ploomes) if url == URL}


def test_registering_twice_gives_one_set_of_webhooks_with_the_current_key(
    home, tmp_path, ploomes, customerx, monkeypatch, capsys
):
    point_at(monkeypatch, ploomes, customerx)
    monkeypatch.setenv("PLOOMES_WEBHOOK_KEY", KEY)
    path = str(write_mapping(tmp_path, extra="contracts:\n  source: deal_products\n"))
    assert main(["webhooks", "register", path, "--url", URL]) == 0
    first = capsys.readouterr().out
    records = [
        (e, a)
        for e in ("Contact", "Deal", "Order", "Quote", "InteractionRecord", "Task")
        for a in ("Create", "Update", "Delete")
    ]
    assert _names(ploomes) == set(records) | {("Deal", "Win"), ("Deal", "Lose"), ("Deal", "Reopen")}
    assert "21 webhook(s) created, 0 already there" in first and "attachments" in first
    monkeypatch.setenv("PLOOMES_WEBHOOK_KEY", KEY + "-rotated")
    assert main(["webhooks", "register", path, "--url", URL]) == 0
    second = capsys.readouterr().out
    assert "0 webhook(s) created, 21 already there" in second and len(ploomes.webhooks.hooks) == 21
    assert {h["ValidationKey"] for h in ploomes.webhooks.hooks.values()} == {KEY + "-rotated"}
    assert KEY not in first + second


def test_unregister_removes_ours_and_nothing_else(home, tmp_path, ploomes, customerx, monkeypatch, capsys):
    point_at(monkeypatch, ploomes, customerx)
    monkeypatch.setenv("PLOOMES_WEBHOOK_KEY", KEY)
    path = str(write_mapping(tmp_path))
    with httpx.Client(base_url=ploomes.url, headers={"User-Key": SECRET_KEY}) as api:
        other = {
            "EntityId": 2,
            "ActionId": ploomes.webhooks.actions["Win"],
            "CallbackUrl": "https://erp.example.com/hook",
        }
        api.post("/Webhooks", json=other)
        # someone else's webhook at our URL, on an entity this mapping does not follow
        mine = {"EntityId": ploomes.webhooks.entities["Order"], "ActionId": 1, "CallbackUrl": URL}
        api.post("/Webhooks", json=mine)
    assert main(["webhooks", "register", path, "--url", URL]) == 0
    assert main(["webhooks", "unregister", path, "--url", URL]) == 0
    assert "webhook(s) removed" in capsys.readouterr().out
    assert _hooks(ploomes) == {
        (2, ploomes.webhooks.actions["Win"], "https://erp.example.com/hook"),
        (mine["EntityId"], 1, URL),
    }


def test_bad_url_missing_key_and_unknown_action_are_clear_errors(
    home, tmp_path, dataset, customerx, monkeypatch, capsys
):
    renamed = {"Create": 11, "Update": 12, "Delete": 13, "Ganho": 14, "Lose": 15, "Reopen": 16}
    with PloomesSandbox(dataset, user_key=SECRET_KEY, requests_per_minute=60_000, burst=1000) as ploomes:
        ploomes.webhooks.actions = renamed
        point_at(monkeypatch, ploomes, customerx)
        path = str(write_mapping(tmp_path))
        assert main(["webhooks", "register", path, "--url", "sync.example.com/hook"]) == 2
        assert "not an absolute http(s) URL" in capsys.readouterr().err
        monkeypatch.delenv("PLOOMES_WEBHOOK_KEY", raising=False)
        assert main(["webhooks", "register", path, "--url", URL]) == 3
        assert "$PLOOMES_WEBHOOK_KEY is not set" in capsys.readouterr().err
        monkeypatch.setenv("PLOOMES_WEBHOOK_KEY", KEY)
        assert main(["webhooks", "register", path, "--url", URL]) == 2
        err = capsys.readouterr().err
        assert (
            "action 'win' is not in /Webhooks@Actions: set webhooks.action_ids.win" in err and "ganho" in err
        )
        assert ploomes.webhooks.hooks == {}  # nothing half-registered
        pinned = str(write_mapping(tmp_path, "pinned", "webhooks:\n  action_ids:\n    win: 14\n"))
        assert main(["webhooks", "register", pinned, "--url", URL]) == 0
        assert (2, 14, URL) in _hooks(ploomes)
        monkeypatch.setenv("PLOOMES_USER_KEY", "wrong")
        assert main(["webhooks", "unregister", pinned, "--url", URL]) == 3
        assert "$PLOOMES_USER_KEY" in capsys.readouterr().err
