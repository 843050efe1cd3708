"""``batchyard run-batch``: an OpenAI batch input file run in process (no server) on the
simulated engine; every request answered once, in the input's order, in OpenAI's output line
format; a refused file names its lines and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

from openai.types.chat import ChatCompletion
from test_cli import run_cli

SIM = '[[models]]\nname = "sim"\nengine = "simulated"\nlatency_ms = 1\n'


def line(custom_id: str, model: str = "sim", **body: object) -> str:
    return json.dumps(
        {
            "custom_id": custom_id,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": model,
                "max_tokens": 8,
                "messages": [{"role": "user", "content": f"About {custom_id}"}],
                **body,
            },
        }
    )


def test_every_request_once_in_input_order(tmp_path: Path) -> None:
    config = tmp_path / "sim.toml"
    config.write_text(SIM)
    custom_ids = [f"row-{n}" for n in range(300)][::-1]  # not sorted: order is the input's
    lines = [
        line(cid, "nope") if n % 100 == 7 else line(cid, n=2) if n % 100 == 8 else line(cid)
        for n, cid in enumerate(custom_ids)
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n\n")
    output = tmp_path / "out.jsonl"
    result = run_cli("run-batch", "-i", str(source), "-o", str(output), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "completed: 294 succeeded, 6 failed of 300" in result.stderr
    results = [json.loads(raw) for raw in output.read_text().splitlines()]
    assert [r["custom_id"] for r in results] == custom_ids
    for n, r in enumerate(results):
        status = r["response"]["status_code"]
        assert status == {7: 404, 8: 400}.get(n % 100, 200), r
        if status == 200:
            ChatCompletion.model_validate(r["response"]["body"])
        else:
            assert r["response"]["body"]["error"]["message"]
    assert not list(tmp_path.glob("*.partial"))


def test_a_refused_file_names_its_lines_and_writes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text(line("a") + "\n" + line("a") + "\n{\n")
    output = tmp_path / "out.jsonl"
    config = tmp_path / "sim.toml"
    config.write_text(SIM)
    result = run_cli("run-batch", "-i", str(source), "-o", str(output), "--config", str(config))
    assert result.returncode == 1
    assert f"{source}: line 2: custom_id: 'a' is used by an earlier line" in result.stderr
    assert f"{source}: line 3: This line is not valid JSON" in result.stderr
    assert not output.exists()
