"""The package as a user installs it: a wheel in a fresh virtualenv, run from a folder of their own.

A clone hides two defects an install shows: mapping names looked up beside the installed package
instead of in the user's `./mappings`, and a code location that needs the project's pyproject.toml.
This test builds the wheel from the source files, installs it (without dependencies) into a new
virtualenv whose only other path is the dependencies of the test environment, checks that
`ploomes_cx` is imported from that install, and drives the commands of the README from a temporary
folder holding `mappings/acme.yaml`, against `ploomes-cx sandbox` started from that same install.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent

# one worker runs this module (make test: --dist loadgroup), so its built and installed wheel (the `installed` fixture) is made once, not once per worker
pytestmark = [pytest.mark.timeout(300), pytest.mark.xdist_group("wheel")]


def _run(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _build_wheel(tmp: Path) -> Path:
    """From a copy of the sources, so the build leaves nothing in the checkout (other tests run beside it)."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "ploomes_cx", src / "ploomes_cx", ignore=shutil.ignore_patterns("__pycache__"))
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    proc = _run([*build, str(src), "-w", str(tmp / "dist")], tmp, dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp / "dist").glob("ploomes_cx-*.whl")
    return wheel


def _fresh_venv(tmp: Path, wheel: Path) -> Path:
    """A new virtualenv holding our wheel; the dependencies come from the test environment through a
    plain path line, which adds no `.pth` of its own (so not the checkout's editable install)."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
    proc = _run([*install, str(wheel)], tmp, dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(venv, work folder, environment): the work folder holds mappings/acme.yaml and nothing else."""
    tmp = tmp_path_factory.mktemp("wheel")
    venv = _fresh_venv(tmp, _build_wheel(tmp))
    work = tmp / "work"
    (work / "mappings").mkdir(parents=True)
    acme = yaml.safe_load((REPO / "ploomes_cx" / "sandbox" / "mappings" / "sandbox.yaml").read_text())
    acme["name"] = "acme"
    acme["ploomes"]["requests_per_minute"] = 6000
    acme["customerx"]["requests_per_minute"] = 6000
    (work / "mappings" / "acme.yaml").write_text(yaml.safe_dump(acme, sort_keys=False))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PLOOMES_", "CUSTOMERX_", "DAGSTER_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return venv, work, env


@pytest.fixture(scope="module")
def sandbox(installed: tuple[Path, Path, dict[str, str]]) -> Iterator[dict[str, str]]:
    """`ploomes-cx sandbox` of the installed package on free ports; the environment that points at it."""
    venv, work, env = installed
    cmd = [
        str(venv / "bin" / "ploomes-cx"),
        "sandbox",
        "--persons",
        "40",
        "--rpm",
        "6000",
        "--customerx-rpm",
        "6000",
    ]
    cmd += ["--ploomes-port", "0", "--customerx-port", "0"]
    proc = subprocess.Popen(
        cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert proc.stdout is not None
        exports: dict[str, str] = {}
        for line in proc.stdout:
            found = re.match(r"\s+export (\w+)=(\S+)", line)
            if found:
                exports[found.group(1)] = found.group(2)
            if "Ctrl-C" in line:
                break
        assert len(exports) == 4, f"the sandbox printed no settings: {exports}"
        yield {**env, **exports, "PLOOMES_WEBHOOK_KEY": "wheel-test-webhook-key-0123456789abcdef"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a sandbox deaf to SIGTERM is an error, not a leftover
            proc.kill()
            proc.wait()
            raise


def test_the_installed_package_is_the_one_imported(installed: tuple[Path, Path, dict[str, str]]) -> None:
    venv, work, env = installed
    where = _run(
        [str(venv / "bin" / "python"), "-c", "import ploomes_cx; print(ploomes_cx.__file__)"], work, env
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    assert not (Path(where.stdout.strip()).parent.parent / "pyproject.toml").exists()


def test_commands_find_the_mapping_in_the_folder_the_user_works_in(
    installed: tuple[Path, Path, dict[str, str]], sandbox: dict[str, str]
) -> None:
    venv, work, _ = installed
    cli = str(venv / "bin" / "ploomes-cx")
    steps = [
        ["check", "acme"],
        ["sync", "acme", "--window", "2026-11-01", "--quiet"],
        ["reconcile", "acme", "--dry-run"],
        ["webhooks", "register", "acme", "--url", "http://127.0.0.1:9/hook"],
        ["review", "acme", "--list"],
    ]
    for step in steps:
        started = time.monotonic()
        proc = _run([cli, *step], work, sandbox)
        print(f"ploomes-cx {' '.join(step)}: {time.monotonic() - started:.1f}s")
        assert proc.returncode == 0, (
            f"ploomes-cx {' '.join(step)}: {proc.stdout[-1500:]}{proc.stderr[-1500:]}"
        )
    # the state folder defaults to the current directory, like the mappings
    assert (work / ".ploomes_cx" / "warehouse_acme.duckdb").exists()


def test_the_built_in_sandbox_mapping_works_in_an_empty_folder(
    installed: tuple[Path, Path, dict[str, str]], sandbox: dict[str, str], tmp_path: Path
) -> None:
    venv, _, _ = installed
    proc = _run([str(venv / "bin" / "ploomes-cx"), "check", "sandbox"], tmp_path, sandbox)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    missing = _run([str(venv / "bin" / "ploomes-cx"), "check", "acme"], tmp_path, sandbox)
    assert missing.returncode == 2
    said = missing.stdout + missing.stderr
    assert f"{tmp_path / 'mappings'} (./mappings of the current directory" in said
    assert "built-in mappings (sandbox)" in said


def test_the_code_location_loads_from_the_wheel(installed: tuple[Path, Path, dict[str, str]]) -> None:
    venv, work, env = installed
    python = str(venv / "bin" / "python")
    env = {**env, "PLOOMES_CX_HOME": str(work / ".ploomes_cx")}
    proc = _run(
        [python, "-m", "dagster", "definitions", "validate", "-m", "ploomes_cx.definitions"], work, env
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    keys = _run(
        [
            python,
            "-c",
            "from ploomes_cx.definitions import defs; "
            "print(sorted({k.path[0] for k in defs().resolve_all_asset_keys()}))",
        ],
        work,
        env,
    )
    assert keys.returncode == 0, keys.stderr[-2000:]
    assert keys.stdout.strip() == "['acme']"
