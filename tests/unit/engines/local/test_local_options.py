"""Option parsing for ``[[models]]`` entries of engine ``local``."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchyard.config import ModelConfig
from batchyard.engines.local.options import LocalOptions, parse_options
from batchyard.errors import ConfigError


def model(**options: object) -> ModelConfig:
    return ModelConfig(name="smollm2-135m", engine="local", options=dict(options))


def test_defaults_need_no_options() -> None:
    assert parse_options(model()) == LocalOptions()


def test_unknown_and_invalid_options_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"models.smollm2-135m: max_batch_sise: Extra inputs"):
        parse_options(model(max_batch_sise=8))
    with pytest.raises(ConfigError, match=r"models.smollm2-135m: device: Invalid enum value 'tpu'"):
        parse_options(model(device="tpu"))
    with pytest.raises(ConfigError, match=r"max_batch_size: Expected `int` >= 1"):
        parse_options(model(max_batch_size=0))


def test_cache_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BATCHYARD_CACHE_DIR", str(tmp_path))
    assert LocalOptions().resolved_cache_dir() == tmp_path / "models"
    assert LocalOptions(cache_dir=str(tmp_path / "x")).resolved_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("BATCHYARD_CACHE_DIR")
    assert LocalOptions().resolved_cache_dir() == Path.home() / ".cache/batchyard/models"
