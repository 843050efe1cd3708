"""``batchyard run-batch`` with an output path it cannot write: refused in one line before
any request runs (on a real batch, hours of GPU work), and no ``.partial`` file left."""

from __future__ import annotations

from pathlib import Path

from test_cli import run_cli
from test_run_batch import SIM, line


def _inputs(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "sim.toml"
    config.write_text(SIM)
    source = tmp_path / "in.jsonl"
    source.write_text("".join(line(f"r{i}") + "\n" for i in range(3)))
    return config, source


def test_output_in_a_missing_directory_fails_before_running(tmp_path: Path) -> None:
    """``-o results/out.jsonl`` where ``results/`` does not exist is refused by name before
    the run, rather than after it with every answer thrown away."""
    config, source = _inputs(tmp_path)
    output = tmp_path / "missing" / "out.jsonl"
    result = run_cli("run-batch", "-i", str(source), "-o", str(output), "--config", str(config))
    assert result.returncode != 0
    assert "the directory" in result.stderr and "does not exist" in result.stderr, result.stderr
    assert "succeeded" not in result.stderr, result.stderr


def test_output_that_is_a_directory_leaves_no_debris(tmp_path: Path) -> None:
    """``-o some_dir`` is refused before the run, and no ``some_dir.partial`` is left beside
    it: a failed run never leaves a file of results that looks like one."""
    config, source = _inputs(tmp_path)
    target = tmp_path / "outdir"
    target.mkdir()
    result = run_cli("run-batch", "-i", str(source), "-o", str(target), "--config", str(config))
    assert result.returncode != 0
    assert "is a directory" in result.stderr, result.stderr
    assert "succeeded" not in result.stderr, result.stderr
    assert not (tmp_path / "outdir.partial").exists()
