"""Shared test helpers: request bodies, the simulated-engine config, API keys, and real
``batchyard`` processes on loopback ports for the end-to-end tier."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from batchyard import ids
from batchyard.store import open_store
from batchyard.store.protocols import KeyStore
from batchyard.timeutil import now_us

REPO = Path(__file__).resolve().parents[1]
OLD_PYTHON_SDK = REPO / ".venv" / "sdks" / "anthropic-0.75.0"
#: llm's Anthropic plugin with the 1.x SDK it needs (Makefile: LLM_ANTHROPIC).
LLM_ANTHROPIC_PLUGIN = REPO / ".venv" / "sdks" / "llm-anthropic-0.30"


POSTGRES_ADMIN_URL = os.environ.get(
    "BATCHYARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the test server, dropped afterwards."""
    name = f"batchyard_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli(*args: str, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "batchyard", *args],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=120,
    )
    return completed.stdout


def create_key(db_url: str, workspace: str) -> str:
    """A key made by ``batchyard keys create``, the command operators run."""
    return cli("keys", "create", "--workspace", workspace, "--db", db_url).strip().splitlines()[-1]


#: Makes a key of the named workspace on the server under test (the ``key_factory`` fixture).
KeyFactory = Callable[[str], Awaitable[str]]


async def new_api_key(store: KeyStore, workspace: str) -> str:
    """A new key of ``workspace`` (made if new), written straight to an open store."""
    key = ids.api_key()
    await store.create_api_key(workspace, ids.hash_api_key(key), key[:10], now_us())
    return key


async def store_api_key(db_url: str, workspace: str) -> str:
    """:func:`new_api_key` on the database at ``db_url``, without a CLI process start (about
    1.3 s). The one place the tests open a store of their own."""
    store = await open_store(db_url)
    try:
        return await new_api_key(store.keys, workspace)
    finally:
        await store.close()


def add_key(db_url: str, workspace: str) -> str:
    """:func:`store_api_key` for synchronous tests (no event loop running)."""
    return asyncio.run(store_api_key(db_url, workspace))


class Api:
    """A thin httpx client for the batch routes, for tests that need raw HTTP."""

    def __init__(self, base_url: str, key: str) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            timeout=120,
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        )

    def create(self, requests: list[dict[str, object]]) -> dict[str, Any]:
        response = self.http.post("/v1/messages/batches", json={"requests": requests})
        assert response.status_code == 200, response.text
        batch: dict[str, Any] = response.json()
        return batch

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        batch: dict[str, Any] = self.http.get(f"/v1/messages/batches/{batch_id}").json()
        return batch

    def wait_until(
        self,
        batch_id: str,
        done: Callable[[dict[str, Any]], bool],
        timeout: float = 120,
        *,
        interval: float = 0.1,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            batch = self.retrieve(batch_id)
            if done(batch):
                return batch
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting; last state {batch}")
            time.sleep(interval)

    def wait_ended(self, batch_id: str, timeout: float = 120) -> dict[str, Any]:
        return self.wait_until(batch_id, lambda b: b["processing_status"] == "ended", timeout)

    def results(self, batch_id: str) -> list[dict[str, Any]]:
        response = self.http.get(f"/v1/messages/batches/{batch_id}/results")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/x-jsonl")
        lines = response.content.split(b"\n")
        assert lines[-1] == b"", "the body ends with exactly one newline"
        assert all(lines[:-1]), "no blank lines"
        return [json.loads(line) for line in lines[:-1]]


def message_request(
    custom_id: str, model: str = "sim", text: str = "hello", **params: object
) -> dict[str, object]:
    return {
        "custom_id": custom_id,
        "params": {
            "model": model,
            "max_tokens": 32,
            "messages": [{"role": "user", "content": text}],
            **params,
        },
    }


class ServerProcess:
    """``batchyard serve`` (or ``worker``) in a child process, with its log in a file."""

    def __init__(
        self,
        workdir: Path,
        db_url: str,
        config: str,
        *,
        command: str = "serve",
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.workdir = workdir
        self.db_url = db_url
        self.config_path = workdir / f"config-{free_port()}.toml"
        self.config_path.write_text(config)
        self.command = command
        self.extra_args = extra_args
        self.port = free_port()
        self.log_path = workdir / f"{command}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60.0) -> ServerProcess:
        args = [
            sys.executable,
            "-m",
            "batchyard",
            self.command,
            "--db",
            self.db_url,
            "--config",
            str(self.config_path),
            *self.extra_args,
        ]
        if self.command == "serve":
            args += ["--port", str(self.port)]
            if "--log-level" not in self.extra_args:
                args += ["--log-level", "warning"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        if self.command == "serve":
            self._wait_healthy(timeout)
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not healthy after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def answered(self, status: int) -> int:
        """Responses with ``status`` in the access log (``extra_args`` must hold
        ``--log-level info``)."""
        return sum(f'" {status} ' in line for line in self.log().splitlines())

    def peak_rss_mib(self) -> float:
        """Peak resident set size of the server process (VmHWM), in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("VmHWM not found")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


def sim_config(extra_models: str = "", **overrides: object) -> str:
    """A config serving the simulated engine as ``sim`` (and ``sim-slow``), fast sweeps.

    ``sim_*`` overrides are options of the ``sim`` model; ``extra_models`` is raw TOML.
    """
    settings = {
        "lease_seconds": 3,
        "poll_interval_seconds": 0.2,
        "retry_base_seconds": 0.05,
        "retry_max_seconds": 0.2,
    }
    settings.update({k: v for k, v in overrides.items() if not k.startswith("sim_")})
    lines = [f"{key} = {_toml(value)}" for key, value in settings.items()]
    sim = {"latency_ms": 5, "concurrency": 64}
    sim.update({k[4:]: v for k, v in overrides.items() if k.startswith("sim_")})
    lines += ["", "[[models]]", 'name = "sim"', 'engine = "simulated"']
    lines += [f"{key} = {_toml(value)}" for key, value in sim.items()]
    lines += [
        "",
        "[[models]]",
        'name = "sim-slow"',
        'engine = "simulated"',
        "latency_ms = 300",
        "concurrency = 2",
    ]
    return "\n".join(lines) + "\n" + extra_models


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)
