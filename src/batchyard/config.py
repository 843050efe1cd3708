"""Settings from a TOML file, environment and command-line flags, as typed data.

A config file looks like::

    database_url = "sqlite:///var/lib/batchyard/batchyard.db"
    public_url = "http://batches.internal:8000"

    [[models]]
    name = "sim"
    engine = "simulated"
    latency_ms = 20

Every key of a ``[[models]]`` table that is not one of :class:`ModelConfig`'s own fields is an
engine option, checked by that engine (``latency_ms`` above belongs to the simulated engine).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta

from batchyard.errors import ConfigError
from batchyard.protocol.messages import describe_validation_error
from batchyard.store import MEMORY_URL
from batchyard.store.database import async_url

DEFAULT_LOCAL_MODEL = "smollm2-135m"

OptionsT = TypeVar("OptionsT", bound=msgspec.Struct)


class ModelConfig(msgspec.Struct, forbid_unknown_fields=True):
    """One servable model name and the engine that answers it."""

    name: str
    engine: str
    aliases: list[str] = []
    #: Requests of this model that one worker keeps in flight at once; unset, what its engine
    #: takes at once (the local engine: its ``max_batch_size``; a relay: 16).
    concurrency: Annotated[int, Meta(ge=1)] | None = None
    #: The largest ``max_tokens`` accepted; unset, whatever the engine can do (the local
    #: model: its context window; a relay: its upstream's limit).
    max_output_tokens: Annotated[int, Meta(ge=1)] | None = None
    #: Longest a single call may take before it is cancelled as a retryable timeout_error.
    timeout_seconds: Annotated[float, Meta(gt=0)] = 600.0
    #: Standard price in USD per million tokens; batch results cost ``batch_discount`` of it.
    #: Reported as ``pricing`` by ``GET /v1/models`` (0: free, run here), except that a model
    #: answered by another server with both prices 0 reports none (its price is that server's).
    price_input_per_mtok: Annotated[float, Meta(ge=0)] = 0.0
    price_output_per_mtok: Annotated[float, Meta(ge=0)] = 0.0
    batch_discount: Annotated[float, Meta(ge=0, le=1)] = 0.5
    #: The model's rate limits per minute, for the whole deployment (every worker together):
    #: requests, input tokens, output tokens. Unset, they are learned from the upstream's
    #: rate-limit headers, if it sends any (:mod:`batchyard.worker.pacing`).
    rpm: Annotated[int, Meta(ge=1)] | None = None
    input_tpm: Annotated[int, Meta(ge=1)] | None = None
    output_tpm: Annotated[int, Meta(ge=1)] | None = None
    #: Queued requests of this model one workspace may have at once; a create that would
    #: pass it is refused whole with 429 ``rate_limit_error``. Unset: no limit.
    max_queued_per_workspace: Annotated[int, Meta(ge=1)] | None = None
    options: dict[str, Any] = {}

    @property
    def names(self) -> tuple[str, ...]:
        """Every name a request may call this model by."""
        return (self.name, *self.aliases)


class Settings(msgspec.Struct, forbid_unknown_fields=True):
    """Everything a server or worker process needs to know."""

    database_url: str = ""
    data_dir: str = ""
    #: Base of the absolute ``results_url``; empty means "the host the client dialled".
    public_url: str = ""
    max_requests_per_batch: Annotated[int, Meta(ge=1)] = 100_000
    #: Requests (lines) of one OpenAI batch's input file: OpenAI's limit.
    max_openai_batch_requests: Annotated[int, Meta(ge=1)] = 50_000
    max_body_bytes: Annotated[int, Meta(ge=1)] = 256 * 1024 * 1024
    #: Largest file ``POST /v1/files`` takes: OpenAI's 200 MB for batch input files.
    max_file_bytes: Annotated[int, Meta(ge=1)] = 200 * 1024 * 1024
    expiry_seconds: Annotated[float, Meta(gt=0)] = 24 * 3600
    retention_seconds: Annotated[float, Meta(gt=0)] = 29 * 24 * 3600
    #: How long a claimed request may run before another worker may take it over.
    lease_seconds: Annotated[float, Meta(gt=0)] = 60.0
    #: Attempts for retryable engine errors before the request is ``errored``.
    max_attempts: Annotated[int, Meta(ge=1)] = 4
    retry_base_seconds: Annotated[float, Meta(ge=0)] = 1.0
    retry_max_seconds: Annotated[float, Meta(ge=0)] = 60.0
    #: Requests one worker claims per round trip to the store.
    claim_size: Annotated[int, Meta(ge=1)] = 512
    #: Webhook deliveries: attempts before giving up, first retry delay, per-call timeout.
    webhook_max_attempts: Annotated[int, Meta(ge=1)] = 8
    webhook_retry_base_seconds: Annotated[float, Meta(ge=0)] = 5.0
    webhook_timeout_seconds: Annotated[float, Meta(gt=0)] = 10.0
    poll_interval_seconds: Annotated[float, Meta(gt=0)] = 0.5
    models: list[ModelConfig] = []

    def resolved_data_dir(self) -> Path:
        if self.data_dir:
            return Path(self.data_dir).expanduser()
        base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        return Path(base) / "batchyard"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir() / 'batchyard.db'}"


def engine_options(model: ModelConfig, kind: type[OptionsT]) -> OptionsT:
    """``model.options`` as an engine's options Struct; :class:`ConfigError` names a bad key."""
    try:
        return msgspec.convert(model.options, kind)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"models.{model.name}: {describe_validation_error(exc)}") from None


_MODEL_FIELDS = frozenset(ModelConfig.__struct_fields__) - {"options"}


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read ``path`` (TOML), then ``BATCHYARD_DATABASE_URL``, then non-``None`` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
    models = raw.get("models", [])
    if not isinstance(models, list):
        raise ConfigError(f"{path}: models: must be an array of tables ([[models]])")
    raw["models"] = [_split_engine_options(entry) for entry in models]
    if env_url := os.environ.get("BATCHYARD_DATABASE_URL"):
        raw["database_url"] = env_url
    raw.update({key: value for key, value in overrides.items() if value is not None})
    try:
        settings = msgspec.convert(raw, Settings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path or 'settings'}: {describe_validation_error(exc)}") from None
    _check_unique_model_names(settings.models)
    if settings.retention_seconds < settings.expiry_seconds:
        raise ConfigError(
            "retention_seconds must be at least expiry_seconds: results cannot be "
            "archived before the batch may have ended"
        )
    _check_database_url(settings.resolved_database_url())
    return settings


def _check_database_url(url: str) -> None:
    if url == MEMORY_URL:
        return
    try:
        async_url(url)
    except Exception as exc:  # sqlalchemy's ArgumentError for gibberish, ValueError for schemes
        raise ConfigError(f"database URL {url!r}: {exc}") from None


def _split_engine_options(entry: Any) -> Any:
    if not isinstance(entry, dict):
        return entry
    if not isinstance(entry.get("options", {}), dict):
        return entry  # msgspec reports "models[N].options: Expected object"
    own = {key: value for key, value in entry.items() if key in _MODEL_FIELDS}
    options = {k: v for k, v in entry.items() if k not in _MODEL_FIELDS and k != "options"}
    return {**own, "options": {**entry.get("options", {}), **options}}


def _check_unique_model_names(models: list[ModelConfig]) -> None:
    seen: set[str] = set()
    for model in models:
        for name in (model.name, *model.aliases):
            if name in seen:
                raise ConfigError(f"models: the name {name!r} is configured twice")
            seen.add(name)
