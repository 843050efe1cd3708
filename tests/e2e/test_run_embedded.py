"""``batchyard run`` with no server: the embedded batchyard in the command's own process, on the
default embedded model (SmolLM2-135M-Instruct), as a laptop user runs it."""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.local_model


def test_twenty_rows_on_the_embedded_model(tmp_path: Path) -> None:
    source = tmp_path / "cities.csv"
    cities = ["Paris", "Tokyo", "Lagos", "Lima", "Oslo"] * 4
    with source.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["city"])
        writer.writerows([city] for city in cities)
    output = tmp_path / "facts.csv"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY")
    }
    done = subprocess.run(
        [
            sys.executable, "-m", "batchyard", "run", str(source),
            "--prompt", "In one sentence, what is {city} known for?",
            "--system", "You are a concise travel guide.",
            "--model", "smollm2-135m", "--max-tokens", "12", "--out", str(output),
            "--yes", "--poll-interval", "0.2",
        ],
        capture_output=True, text=True, timeout=300, env={**env, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "an embedded batchyard" in done.stderr
    with output.open(newline="") as written:
        rows = list(csv.DictReader(written))
    assert [row["city"] for row in rows] == cities
    for row in rows:
        assert row["error_type"] == "" and row["response"].strip(), row
        assert row["stop_reason"] in ("end_turn", "max_tokens")
        assert 0 < int(row["output_tokens"]) <= 12 and int(row["input_tokens"]) > 10
    # The embedded server kept its batch in the state directory's own SQLite file.
    with sqlite3.connect(tmp_path / "facts.csv.batchyard" / "batchyard.db") as db:
        assert db.execute("SELECT count(*) FROM batches").fetchone() == (1,)
