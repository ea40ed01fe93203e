"""A throwaway PostgreSQL server from Debian's package, for a Dagster instance on real storage.

`initdb` into a folder of ours, started on a free loopback port, stopped and removed at exit: the
scale benchmark and its small test run the instance the way `deploy/dagster.yaml` describes,
without touching any server the machine may have. Debian's `postgresql` package provides the
binaries (`make test` and `make bench-scale` install it when missing). PostgreSQL refuses to run
as root, so as root the server runs as the package's `postgres` user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (make test does)")
    return found[-1].parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalPostgres:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="ploomes-cx-pg-"))
        self.port = free_port()
        self.bindir = _bindir()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, cwd=self.folder)

    def start(self) -> LocalPostgres:
        if self._as:
            os.chmod(self.folder, 0o755)
            shutil.chown(self.folder, "postgres", "postgres")
        data = self.folder / "data"
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-U", "dagster", "--auth=trust", "-E", "UTF8")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=300"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "start",
        )
        self._run(
            str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "dagster", "dagster"
        )
        return self

    def stop(self) -> None:
        try:
            self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop"
            )
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """The variables deploy/dagster.yaml reads (trust auth: the password is not checked)."""
        return {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_USERNAME": "dagster",
            "DAGSTER_PG_PASSWORD": "unused",
            "DAGSTER_PG_DB": "dagster",
        }

    def instance_folder(self, folder: Path) -> Path:
        """A DAGSTER_HOME holding deploy/dagster.yaml, with this server's port (it says 5432)."""
        config: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
        config["storage"]["postgres"]["postgres_db"]["port"] = self.port
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        return folder

    def query(self, sql: str) -> str:
        out = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "dagster",
                "-tAc",
                sql,
                "dagster",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()
