"""Fixtures: sandbox servers on free ports (real HTTP), a fresh state folder per test."""

from __future__ import annotations

import datetime as dt
import os
import signal
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ploomes_cx.live.process import ListenProcess
from ploomes_cx.mapping import Mapping, load_mapping
from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox, sandbox_env

# Every test's folders (its DuckDB files, its Dagster instance's SQLite files) on tmpfs when the
# machine has one: each commit of those databases is an fsync, which on a disk is a third to half
# of a sync's time (issue 29). pytest reads this variable when it first makes its base folder, and
# xdist's workers make theirs inside the controller's. Set it yourself (or pass --basetemp) to
# choose another place; /dev/shm is memory, and pytest keeps the folders of its last three runs.
_TMPFS = Path("/dev/shm")
if "PYTEST_DEBUG_TEMPROOT" not in os.environ and _TMPFS.is_dir() and os.access(_TMPFS, os.W_OK):
    os.environ["PYTEST_DEBUG_TEMPROOT"] = str(_TMPFS)

SP = ZoneInfo("America/Sao_Paulo")
SECRET_KEY = "pk-Zq8-SECRET-do-not-print-7731"
CX_TOKEN = "cx-SECRET-token-9913"


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SP)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "persons(n): the `dataset` fixture's account has n persons instead of 800 (issue 29)"
    )


# The modules that mostly wait (a PostgreSQL instance and its daemon, the webserver and a browser,
# pacing, `check` and the demo in subprocesses) are one xdist group, "waits": one worker runs them
# in turn while the other two keep both cores busy. Apart, two of them often waited at once and
# left a core idle (`make bench-suite`). They come first, with the installed wheel (a minute of
# pip), so they overlap the rest of the suite instead of starting when the others are done.
LONGEST_FIRST = (
    "test_scale.py",
    "test_browser.py",
    "test_commands.py",
    "test_connect.py",
    "test_ploomes_client.py",
    "test_customerx_client.py",
    "test_probes.py",
    "test_wheel.py",
)


@pytest.hookimpl(trylast=True)  # after xdist's own hook, which names the groups in pytest < 9.2
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each module's tests stay together and in order
    if getattr(config.option, "loadgroup", False):
        _name_xdist_groups(items)


def _name_xdist_groups(items: list[pytest.Item]) -> None:
    """`--dist loadgroup` sends the tests whose node id ends in `@<group>` to one worker. xdist 3.8
    adds that suffix by setting `item._nodeid`, which pytest 9.2 no longer reads (an id is
    `item._id`): the groups were silently ignored and every worker rebuilt a module's shared
    fixture (a synced UI, an installed wheel). This adds the suffix where xdist's did not land."""
    from _pytest.nodeid import NodeId  # pytest >= 9.2; older ones never reach here with a bare id

    for item in items:
        groups = sorted(
            {
                str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                for m in item.iter_markers("xdist_group")
            }
        )
        if groups and "@" not in item.nodeid:
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(groups)}")  # type: ignore[attr-defined]
            assert item.nodeid.endswith("@" + "_".join(groups)), "pytest changed how a node id is kept"


@pytest.fixture
def dataset(request: pytest.FixtureRequest) -> PloomesDataset:
    """The sandbox account, 800 persons; a test whose assertions do not depend on the account's
    size asks for fewer with `@pytest.mark.persons(n)`: every window it syncs is smaller."""
    marker = request.node.get_closest_marker("persons")
    return PloomesDataset(persons=marker.args[0] if marker else 800, seed=7)


@pytest.fixture
def ploomes(dataset: PloomesDataset) -> Iterator[PloomesSandbox]:
    """A sandbox whose rate limit tests do not hit unless they lower it."""
    with PloomesSandbox(dataset, user_key=SECRET_KEY, requests_per_minute=60_000, burst=1000) as server:
        yield server


@pytest.fixture
def customerx(tmp_path: Path) -> Iterator[CustomerXSandbox]:
    with CustomerXSandbox(
        token=CX_TOKEN, requests_per_minute=60_000, burst=1000, state_file=tmp_path / "customerx.json"
    ) as server:
        yield server


def point_at(
    monkeypatch: pytest.MonkeyPatch,
    ploomes: PloomesSandbox,
    customerx: CustomerXSandbox,
    key: str = SECRET_KEY,
) -> None:
    """Set the default environment variables to the sandbox servers."""
    monkeypatch.setenv("PLOOMES_BASE_URL", ploomes.url)
    monkeypatch.setenv("PLOOMES_USER_KEY", key)
    monkeypatch.setenv("CUSTOMERX_BASE_URL", customerx.url)
    monkeypatch.setenv("CUSTOMERX_TOKEN", customerx.token)


def live_mapping(
    monkeypatch: pytest.MonkeyPatch,
    ploomes: PloomesSandbox,
    customerx: CustomerXSandbox,
    directory: Path,
    name: str,
    key: str,
    window: str | None = "2026-11-01",
) -> str:
    """For the live tests: the environment pointed at the sandboxes with a webhook key, a mapping
    that tolerates the sandbox's dirt, and its `window` synced (None: nothing synced)."""
    from ploomes_cx.cli import main

    point_at(monkeypatch, ploomes, customerx)
    monkeypatch.setenv("PLOOMES_WEBHOOK_KEY", key)
    path = str(write_mapping(directory, name, "quality:\n  max_rejected_ratio: 0.9\n"))
    if window is not None:
        assert main(["sync", path, "--window", window]) == 0
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state"
    monkeypatch.setenv("PLOOMES_CX_HOME", str(path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return path


def write_mapping(directory: Path, name: str = "acme", extra: str = "", customerx_rpm: int = 6000) -> Path:
    """A mapping like mappings/sandbox.yaml, fast enough for tests: 6000 requests/min, and a first
    retry after 50 ms, not a second (the sandbox's dirt makes a sync retry some requests; how long
    a retry waits is the client tests' business)."""
    path = directory / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: {name}
        ploomes:
          requests_per_minute: 6000
          page_size: 50
          max_attempts: 6
          first_retry_seconds: 0.05
        customerx:
          requests_per_minute: {customerx_rpm}
          first_retry_seconds: 0.05
        sync:
          start: "2026-11-01"
        custom_fields:
          clients:
            - ploomes: contact_0A1B2C3D-0000-0000-0000-00000000000A
              customerx: segmento
        """)
        + textwrap.dedent(extra)
    )
    return path


@pytest.fixture
def mapping(tmp_path: Path) -> Mapping:
    return load_mapping(write_mapping(tmp_path))


@pytest.fixture
def sandbox_environ(
    mapping: Mapping, ploomes: PloomesSandbox, customerx: CustomerXSandbox, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    env = sandbox_env(mapping, ploomes, customerx)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def mapping_with_timeline(tmp_path: Path) -> Mapping:
    """The test mapping with all timeline kinds and contracts from won deals (the defaults)."""
    return load_mapping(write_mapping(tmp_path, "fullsync", "quality:\n  max_rejected_ratio: 0.5\n"))


@pytest.fixture
def listener_of() -> Iterator[Callable[[str], ListenProcess]]:
    """Start `ploomes-cx listen MAPPING` processes; any still running at the end is killed."""
    started: list[ListenProcess] = []

    def start(mapping: str) -> ListenProcess:
        started.append(ListenProcess(mapping).start())
        return started[-1]

    yield start
    for one in started:
        if one.running():
            one.stop(signal.SIGKILL)
