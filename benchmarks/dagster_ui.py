"""Talking to a running Dagster webserver the way its pages do (GraphQL): wait for the code
location, launch a backfill, read its runs. Shared by the UI test and `make bench-scale`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from benchmarks.postgres import free_port

LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
BACKFILL_RUNS = """
query Runs($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}) {
    ... on Runs { results { runId status creationTime startTime endTime tags { key value } } }
  }
}"""
LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def graphql(url: str, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def wait_for_code_location(url: str, proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    """Until every code location has loaded; a location that loaded with an error (a bad
    mapping, say) fails at once with the error, instead of later as a missing job."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the webserver exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            entries = graphql(url, LOCATIONS, timeout=10)["data"]["workspaceOrError"]["locationEntries"]
        except OSError:
            entries = []
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            errors = [e["locationOrLoadError"] for e in entries]
            failed = [e.get("message", "") for e in errors if e and e["__typename"] == "PythonError"]
            if failed:
                raise AssertionError(f"the code location failed to load:\n{failed[0][:3000]}")
            return
        time.sleep(1)
    raise AssertionError(f"the code location did not load in {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def backfill_selector(mapping: str) -> dict:
    """The partition set of a mapping's sync job, as the UI's backfill dialog names it."""
    return {
        "partitionSetName": f"{mapping}_sync_partition_set",
        "repositorySelector": {
            "repositoryLocationName": "ploomes_cx.definitions",
            "repositoryName": "__repository__",
        },
    }


@contextlib.contextmanager
def running_ui(env: dict[str, str], log: Path, cwd: Path) -> Iterator[str]:
    """`ploomes-cx ui` (the webserver and the daemon) on a free port, until its code location
    has loaded; yields its URL, and stops the whole process group afterwards."""
    port = free_port()
    cli = str(Path(sys.executable).parent / "ploomes-cx")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [cli, "ui", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_code_location(url, proc, log)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
