"""Settings from TOML: engine options split from model fields, env override, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchyard.config import load_settings
from batchyard.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "batchyard.toml"
    path.write_text(text)
    return path


def test_engine_options_are_separated_from_model_fields(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            '[[models]]\nname = "sim"\nengine = "simulated"\nconcurrency = 3\nlatency_ms = 20\n',
        )
    )
    (model,) = settings.models
    assert model.concurrency == 3 and model.options == {"latency_ms": 20}


def test_environment_database_url_and_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHYARD_DATABASE_URL", "sqlite:////tmp/from-env.db")
    assert load_settings(None).resolved_database_url() == "sqlite:////tmp/from-env.db"
    explicit = load_settings(None, database_url="sqlite:////tmp/flag.db")
    assert explicit.resolved_database_url() == "sqlite:////tmp/flag.db"


def test_default_database_lives_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BATCHYARD_DATABASE_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    url = load_settings(None).resolved_database_url()
    assert url == f"sqlite:///{tmp_path / 'batchyard' / 'batchyard.db'}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[models]]\nname = "a"\nengine = "simulated"\n' * 2, "configured twice"),
        ("lease_seconds = 0\n", "lease_seconds"),
        ("max_attempts = 0\n", "max_attempts"),
        ('database_url = "mysql://x"\n', "mysql"),
        ("unknown_setting = 1\n", "unknown_setting"),
        (
            '[[models]]\nname = "a"\nengine = "simulated"\nprice_input_per_mtok = -1\n',
            "price_input_per_mtok",
        ),
        ('[[models]]\nname = "a"\nengine = "simulated"\nbatch_discount = 1.5\n', "batch_discount"),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(write(tmp_path, text))
