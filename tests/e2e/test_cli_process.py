"""The real ``python -m batchyard`` process: one clear line and an exit code, no traceback.

The matrix of bad settings runs in-process (tests/integration/test_cli.py); here, a few of
them again through the real entry point, and the failures that come only after ``serve``
has loaded its engines (the default config imports torch: seconds, so a process of its own).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchyard", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_bad_config_is_one_line_and_exit_2(command: str, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[models]]\nname = "x"\nengine = "warp"\n')
    result = run_cli(command, "--config", str(config), "--db", str(tmp_path / "db.sqlite"))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and "unknown engine 'warp'" in result.stderr


def test_unopenable_database_is_one_line(tmp_path: Path) -> None:
    result = run_cli("serve", "--db", "/proc/nope/x.db")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot open the database" in result.stderr, result.stderr


def test_a_database_from_an_older_schema_is_refused_clearly(tmp_path: Path) -> None:
    database = tmp_path / "old.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE requests (id INTEGER PRIMARY KEY, custom_id TEXT)")
    result = run_cli("serve", "--db", str(database))
    assert result.returncode == 1, result.stderr
    assert "made before migrations" in result.stderr and "db upgrade" in result.stderr
    assert "Traceback" not in result.stderr
    # Older than the migrations' baseline: the upgrade says it cannot, naming what is missing.
    upgraded = run_cli("db", "upgrade", "--db", str(database))
    assert upgraded.returncode == 1, upgraded.stderr
    assert "older than the migrations' baseline" in upgraded.stderr
    assert "requests.model" in upgraded.stderr and "Traceback" not in upgraded.stderr
