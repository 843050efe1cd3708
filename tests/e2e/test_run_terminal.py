"""``batchyard run`` on a terminal, as its user sees it: driven in tmux, asserted on the screen.

tmux gives the run a real pseudo-terminal (so rich draws its live progress bars and the
confirmation prompt reads from the keyboard); ``capture-pane`` reads back what is on screen.
The last screen is saved as a test artifact (``run-screen.txt`` in the test's directory).
"""

from __future__ import annotations

import csv
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import ServerProcess, add_key, sim_config

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

SLOW = """
[[models]]
name = "paced"
engine = "simulated"
latency_ms = 60
concurrency = 4
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path, f"sqlite:///{tmp_path / 'batchyard.db'}", sim_config(SLOW))
    server.start()
    yield server
    server.stop()


class Tmux:
    """One detached tmux session on a private socket, 120 x 40."""

    def __init__(self, workdir: Path) -> None:
        self.socket = str(workdir / "tmux.sock")

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", self.socket, *args], capture_output=True, text=True, check=True
        )
        return done.stdout

    def start(self, command: str) -> None:
        self.tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", "run", command)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-t", "run")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "run", *keys)

    def wait_for(self, seen: Callable[[str], bool], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if seen(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"not on screen after {timeout}s:\n{screen}")
            time.sleep(0.05)

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


def test_progress_bars_then_the_summary_table(server: ServerProcess, tmp_path: Path) -> None:
    key = add_key(server.db_url, "terminal")
    source = tmp_path / "tickets.csv"
    with source.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "ticket"])
        writer.writerows([f"t{n}", f"Ticket number {n}"] for n in range(240))
    answers = tmp_path / "answers.csv"
    command = shlex.join(
        [
            sys.executable,
            "-m",
            "batchyard",
            "run",
            str(source),
            "--prompt",
            "Classify: {ticket}",
            "--model",
            "paced",
            "--max-tokens",
            "8",
            "--id-column",
            "id",
            "--out",
            str(answers),
            "--batch-size",
            "80",
            "--price-input",
            "3",
            "--price-output",
            "15",
            "--poll-interval",
            "0.2",
            "--base-url",
            server.base_url,
            "--api-key",
            key,
        ]
    )
    tmux = Tmux(tmp_path)
    # The shell stays after the run so that its last screen can be read.
    tmux.start(f"{command}; echo EXIT=$?; sleep 600")
    try:
        asked = tmux.wait_for(lambda s: "Submit 240 requests in 3 batches?" in s)
        assert "240 rows" in asked and "Input tokens" in asked and "at batch price" in asked
        tmux.keys("y", "Enter")
        running = tmux.wait_for(lambda s: "total" in s and "━" in s and "/240" in s)
        assert running.count("Submitted msgbatch_") == 3, running
        assert "ETA" in running and "/s" in running
        final = tmux.wait_for(lambda s: "EXIT=" in s, timeout=120)
    finally:
        screen = tmux.screen()
        (tmp_path / "run-screen.txt").write_text(screen)
        tmux.close()
    assert "EXIT=0" in final, final
    assert "240/240" in final
    for label in ("Succeeded", "Errored", "Input tokens", "Cost (batch)", "Cost (standard)"):
        assert label in final, final
    assert f"Wrote 240 rows to {answers}" in final
    assert answers.exists()
