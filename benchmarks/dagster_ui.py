"""Talking to a running Dagster webserver the way its pages do (GraphQL): wait for the code
location, launch a backfill, read its runs. Shared by the UI test and `make bench-scale`."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

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
