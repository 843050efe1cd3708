"""The ``batchyard`` command fails on bad configuration with one clear line, no traceback.

In-process through Typer's runner: an exception that escapes the command propagates and
fails the test (a process would print it as a traceback). The same failures from the real
``python -m batchyard`` process, and those that load the engines first, are in
tests/e2e/test_cli_process.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from batchyard.cli import app
from batchyard.store.schema import head


def run_cli(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return Result(result.exit_code, result.stdout, result.stderr)


class Result:
    """What a test reads of a finished command: as ``subprocess.CompletedProcess``."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


BAD_CONFIGS = {
    "unknown engine": ('[[models]]\nname = "x"\nengine = "warp"\n', "unknown engine 'warp'"),
    "bad option type": (
        '[[models]]\nname = "x"\nengine = "simulated"\nlatency_ms = "fast"\n',
        "latency_ms",
    ),
    "unknown option": (
        '[[models]]\nname = "x"\nengine = "simulated"\nbogus_opt = 1\n',
        "bogus_opt",
    ),
    "models not tables": ("models = 5\n", "models"),
    "zero concurrency": (
        '[[models]]\nname = "x"\nengine = "simulated"\nconcurrency = 0\n',
        "concurrency",
    ),
    "zero claim size": ("claim_size = 0\n", "claim_size"),
    "bad toml": ("models = [\n", "config"),
    "retention before expiry": ("retention_seconds = 10\nexpiry_seconds = 20\n", "retention"),
}


@pytest.mark.parametrize("command", ["serve", "worker"])
@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_one_line_and_exit_2(case: str, command: str, tmp_path: Path) -> None:
    text, expected = BAD_CONFIGS[case]
    config = tmp_path / "bad.toml"
    config.write_text(text)
    result = run_cli(command, "--config", str(config), "--db", str(tmp_path / "db.sqlite"))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and expected in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["serve", "--db", "foo://x"], 2, "foo"),
        (["keys", "create", "--workspace", "w", "--db", "foo://x"], 2, "foo"),
        (["keys", "create", "--workspace", "w", "--db", "/proc/nope/x.db"], 1, "database"),
        (["serve", "--log-level", "bogus"], 2, "--log-level"),
    ],
)
def test_bad_arguments_are_one_line(args: list[str], code: int, expected: str) -> None:
    result = run_cli(*args)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and expected in result.stderr, result.stderr


def test_keys_create_prints_the_key_last(tmp_path: Path) -> None:
    result = run_cli("keys", "create", "--workspace", "acme", "--db", str(tmp_path / "k.db"))
    assert result.returncode == 0
    assert result.stdout.strip().splitlines()[-1].startswith("sk-by-")


@pytest.mark.parametrize(
    "command",
    [
        ("worker",),
        ("keys", "create", "--workspace", "w"),
        ("webhooks", "add", "--workspace", "w", "--url", "http://127.0.0.1:9/"),
        ("webhooks", "list", "--workspace", "w"),
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_only_serve_may_use_the_in_memory_store(command: tuple[str, ...]) -> None:
    """Another process can never reach a ``serve``'s in-memory store: say so, change nothing."""
    result = run_cli(*command, "--db", "memory://")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cannot use the in-memory store (memory://): only 'serve' can" in result.stderr


def test_an_api_only_server_cannot_use_the_in_memory_store() -> None:
    result = run_cli("serve", "--no-worker", "--db", "memory://")
    assert result.returncode == 2
    assert "--no-worker cannot use the in-memory store" in result.stderr


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_database_behind_is_refused_until_db_upgrade(command: str, tmp_path: Path) -> None:
    """A database made by the previous release: ``serve`` and ``worker`` refuse it with one
    line naming the command that fixes it; ``db upgrade`` brings it forward, once."""
    path = tmp_path / "previous.sqlite"
    dump = Path(__file__).parent / "store" / "previous_release" / "sqlite.sql"
    with sqlite3.connect(path) as db:
        db.executescript(dump.read_text())
    refused = run_cli(command, "--db", str(path))
    assert refused.returncode == 1
    assert "made before migrations" in refused.stderr
    assert "run `batchyard db upgrade`" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA auto_vacuum").fetchone() == (0,)  # made before it was set
    upgraded = run_cli("db", "upgrade", "--db", str(path))
    assert upgraded.returncode == 0, upgraded.stderr
    upgrade_line, rewrite_line = upgraded.stdout.strip().splitlines()
    assert upgrade_line.endswith(f"to {head()}.")
    assert rewrite_line.startswith("Rewrote the SQLite file so that retention gives its space")
    with sqlite3.connect(path) as db:  # INCREMENTAL: the retention purge shrinks the file
        assert db.execute("PRAGMA auto_vacuum").fetchone() == (2,)
    again = run_cli("db", "upgrade", "--db", str(path))
    assert again.stdout.strip() == f"The database is at schema revision {head()} already."
