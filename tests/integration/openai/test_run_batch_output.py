"""``batchyard run-batch`` with an output path it cannot write."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SIM = '[[models]]\nname = "sim"\nengine = "simulated"\nlatency_ms = 1\n'


def _inputs(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "sim.toml"
    config.write_text(SIM)
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(
            json.dumps(
                {
                    "custom_id": f"r{i}",
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": {
                        "model": "sim",
                        "max_tokens": 4,
                        "messages": [{"role": "user", "content": "x"}],
                    },
                }
            )
            + "\n"
            for i in range(3)
        )
    )
    return config, source


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchyard", "run-batch", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_output_in_a_missing_directory_fails_before_running(tmp_path: Path) -> None:
    """MEDIUM. ``-o results/out.jsonl`` where ``results/`` does not exist: every request is
    run (hours of GPU work on a real batch), then the write fails with a raw
    ``FileNotFoundError`` traceback and all the answers are thrown away. vLLM's run_batch
    fails as early; a tool that runs for hours should check (or create) the output's
    directory before it starts, and report it in one line. Fix: validate ``output_path``
    (parent exists and is writable, path is not a directory) in ``run_batch_command``
    before ``run_batch``."""
    config, source = _inputs(tmp_path)
    result = _run(
        "-i", str(source), "-o", str(tmp_path / "missing" / "out.jsonl"), "--config", str(config)
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "FileNotFoundError" not in result.stderr, (
        result.stderr[-600:]
    )
    assert "succeeded" not in result.stderr


def test_output_that_is_a_directory_leaves_no_debris(tmp_path: Path) -> None:
    """LOW. ``-o some_dir``: the batch runs, then ``rename`` fails with a traceback and a
    ``some_dir.partial`` file full of results is left beside it (the module promises that a
    failed run never leaves a partial file). Fix: refuse a directory up front; remove the
    ``.partial`` file when the final rename fails."""
    config, source = _inputs(tmp_path)
    target = tmp_path / "outdir"
    target.mkdir()
    result = _run("-i", str(source), "-o", str(target), "--config", str(config))
    assert result.returncode != 0
    assert not (tmp_path / "outdir.partial").exists()
    assert "Traceback" not in result.stderr, result.stderr[-600:]
