"""The files for running beyond one machine (issue 14, part 7): the Dockerfile and the values for
Dagster's Helm chart. No image is built and no cluster runs here; these tests hold the files to
what they rely on: paths that exist, extras the project declares, the module the code server
loads, and the same instance limits as deploy/dagster.yaml."""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_dockerfile_copies_what_exists_installs_declared_extras_and_serves_the_definitions():
    steps = _instructions()
    assert steps[0][0] == "FROM" and "python:3.11" in steps[0][1]
    for kind, args in steps:
        if kind == "COPY" and not args.startswith("--from="):  # --from copies out of the build stage
            *sources, _ = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), f"Dockerfile copies {source}, which the repository lacks"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installs = " ".join(args for kind, args in steps if kind == "RUN")
    for group in re.findall(r"'\.\[([a-z0-9,_-]+)\]'", installs):
        assert set(group.split(",")) <= set(extras), group
    assert {"postgres", "k8s"} <= set(extras)
    command = next(args for kind, args in steps if kind == "CMD")
    argv = yaml.safe_load(command)  # the exec form is a JSON (so YAML) list
    module = argv[argv.index("--module-name") + 1]
    assert importlib.import_module(module).defs is not None
    env = " ".join(args for kind, args in steps if kind == "ENV")
    final = steps[max(i for i, (kind, _) in enumerate(steps) if kind == "FROM") :]
    workdir = next(args for kind, args in final if kind == "WORKDIR")
    assert f"PLOOMES_CX_MAPPINGS={workdir}/mappings" in env  # where the image's mappings are
    assert ("COPY", "--from=build /mappings ./mappings") in final
    # the image runs the installed wheel, never an editable install of a source tree
    final_installs = " ".join(args for kind, args in final if kind == "RUN")
    assert "pip install --no-deps /tmp/dist/ploomes_cx-*.whl" in final_installs
    assert " -e " not in final_installs and ("COPY", "ploomes_cx ./ploomes_cx") not in final
    assert "EXPOSE" in {kind for kind, _ in steps} and str(argv[argv.index("--port") + 1]) == "3030"


def test_the_helm_values_ask_the_chart_for_what_deploy_dagster_yaml_holds():
    values = yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text())
    instance = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    # the chart writes these into the instance's dagster.yaml (templates/helpers/instance/_concurrency.tpl)
    concurrency = values["concurrency"]
    rendered = {
        "pools": {"default_limit": concurrency["pools"]["defaultLimit"]},
        "runs": {"tag_concurrency_limits": concurrency["runs"]["tagConcurrencyLimits"]},
    }
    assert rendered == instance["concurrency"]
    daemon = values["dagsterDaemon"]
    assert daemon["enabled"] and daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert daemon["runRetries"]["maxRetries"] == instance["run_retries"]["max_retries"]
    assert daemon["runMonitoring"]["enabled"] == instance["run_monitoring"]["enabled"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    (location,) = values["dagster-user-deployments"]["deployments"]
    args = location["dagsterApiGrpcArgs"]
    assert importlib.import_module(args[args.index("--module-name") + 1]).defs is not None
    assert location["port"] == 3030
    # secrets come from Kubernetes Secrets, never from values
    text = (ROOT / "deploy" / "helm" / "values.yaml").read_text()
    assert not re.search(r"(?i)^\s*(postgresqlPassword|token|user_key)\s*:", text, re.M)
    mounts = {m["mountPath"] for m in location["volumeMounts"]}
    launched = {m["mountPath"] for m in values["runLauncher"]["config"]["k8sRunLauncher"]["volumeMounts"]}
    home = next(e["value"] for e in location["env"] if e["name"] == "PLOOMES_CX_HOME")
    assert home in mounts and home in launched  # every run sees the same DuckDB and pacing files
