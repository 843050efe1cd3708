"""A 60 MB upload and download through a real server with the official ``openai`` SDK: the
server's memory grows by a small fraction of the file either way (the bytes stream through
a spool and the store, never whole in memory), and they come back byte for byte."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openai
import psutil
import pytest
from harness import ServerProcess, add_key

MIB = 1 << 20
SIZE = 60 * MIB
#: What the server may grow by while a 60 MiB file passes through: buffers of a few MiB
#: (spool reads, store chunks, the socket), never the file.
ALLOWED_GROWTH = 20 * MIB


@contextmanager
def peak_rss(pid: int) -> Iterator[list[int]]:
    """Sample the process's RSS every 20 ms while the block runs; yields ``[baseline, peak]``
    (filled in when the block ends)."""
    process = psutil.Process(pid)
    result = [process.memory_info().rss, 0]
    stop = threading.Event()
    samples: list[int] = []

    def sample() -> None:
        while not stop.is_set():
            samples.append(process.memory_info().rss)
            stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield result
    finally:
        stop.set()
        sampler.join()
        result[1] = max([*samples, process.memory_info().rss])


def test_a_60_mb_file_streams_through_the_server(
    sim_server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "big.jsonl"
    line = b'{"custom_id": "%08d", "method": "POST", "url": "/v1/chat/completions"}\n'
    with path.open("wb") as out:
        written = n = 0
        while written < SIZE:
            chunk = line % n
            out.write(chunk)
            written += len(chunk)
            n += 1
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    client = openai.OpenAI(
        base_url=f"{sim_server.base_url}/v1",
        api_key=add_key(sim_server.db_url, "files-e2e"),
        max_retries=0,
        _strict_response_validation=True,
    )
    with client:
        # Warm up the route (imports, first connections) so the baseline is steady.
        client.files.delete(client.files.create(file=("warm.jsonl", line), purpose="batch").id)

        with peak_rss(sim_server.pid) as upload_rss:
            created = client.files.create(file=path, purpose="batch")
        assert created.bytes == written

        with peak_rss(sim_server.pid) as download_rss:
            downloaded = hashlib.sha256()
            with client.files.with_streaming_response.content(created.id) as response:
                for chunk in response.iter_bytes(MIB):
                    downloaded.update(chunk)
        assert downloaded.hexdigest() == digest

    up = (upload_rss[1] - upload_rss[0]) / MIB
    down = (download_rss[1] - download_rss[0]) / MIB
    with capsys.disabled():  # shown in every test log, not only on failure
        print(
            f"\n60 MiB file: server RSS grew {up:.1f} MiB during the upload, "
            f"{down:.1f} MiB during the download"
        )
    assert upload_rss[1] - upload_rss[0] < ALLOWED_GROWTH
    assert download_rss[1] - download_rss[0] < ALLOWED_GROWTH
