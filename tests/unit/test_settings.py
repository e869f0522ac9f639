from __future__ import annotations

import subprocess
import sys

import pytest

from rag.core.errors import ConfigurationError
from rag.settings import load_settings

GOOD = {
    "DATABASE_URL": "postgresql://rag:pw@127.0.0.1:5432/rag",
    "REDIS_URL": "redis://:pw@127.0.0.1:6379/0",
    "S3_ENDPOINT_URL": "http://127.0.0.1:8333",
    "S3_ACCESS_KEY_ID": "key",
    "S3_SECRET_ACCESS_KEY": "secret",
    "SECRET_KEY": "s" * 32,
    "JWT_SECRET_KEY": "j" * 32,
}


def test_good_settings_load_with_spec_defaults() -> None:
    settings = load_settings(GOOD)
    assert settings.DATABASE_POOL_SIZE == 20
    assert settings.DATABASE_POOL_MAX_OVERFLOW == 30
    assert settings.DATABASE_POOL_TIMEOUT == 30
    assert settings.DATABASE_POOL_RECYCLE == 3600
    assert settings.ENABLE_GPU is False
    assert settings.JWT_SECRET_KEY.get_secret_value() == "j" * 32
    assert "j" * 32 not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DATABASE_URL", "mysql://x@h/db", "DATABASE_URL must start with postgresql://"),
        ("DATABASE_URL", "postgresql://h", "DATABASE_URL must name a host and a database"),
        ("REDIS_URL", "http://x", "REDIS_URL must start with redis://"),
        ("JWT_SECRET_KEY", "short", "JWT_SECRET_KEY must be at least 32 characters"),
        ("ENABLE_GPU", "maybe", "ENABLE_GPU"),
        ("DATABASE_POOL_SIZE", "0", "DATABASE_POOL_SIZE"),
        ("S3_ENDPOINT_URL", "127.0.0.1:8333", r"S3_ENDPOINT_URL must be an http\(s\) URL"),
    ],
)
def test_bad_setting_names_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(GOOD | {name: value})


def test_missing_secret_names_the_variable_and_the_fix() -> None:
    env = {k: v for k, v in GOOD.items() if k != "JWT_SECRET_KEY"}
    with pytest.raises(
        ConfigurationError, match=r"JWT_SECRET_KEY is not set \(see .env.example, or run `make up`\)"
    ):
        load_settings(env)


def test_cli_prints_one_line_without_traceback() -> None:
    env = {k: v for k, v in GOOD.items() if k != "JWT_SECRET_KEY"} | {"PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "rag.cli", "config", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: JWT_SECRET_KEY is not set (see .env.example, or run `make up`)"
    ]


def test_cli_redacts_secrets() -> None:
    env = GOOD | {"PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "rag.cli", "config", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "j" * 32 not in result.stdout and ":pw@" not in result.stdout
    assert "JWT_SECRET_KEY=********" in result.stdout
