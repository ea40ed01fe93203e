"""Exit codes and the project root, shared by every command (mapping-and-cli.md §2)."""

from __future__ import annotations

from pathlib import Path

EXIT_OK, EXIT_RECORDS_FAILED, EXIT_USAGE, EXIT_RUN_FAILED = 0, 1, 2, 3
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
