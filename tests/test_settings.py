"""Settings: defaults, TANDEM_* variables, .env, durations and fail-fast validation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from tandem.core.durations import parse_duration
from tandem.core.settings import DEV_SECRET_KEY, Settings

GOOD_SECRET = "a-real-secret-that-is-long-enough"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TANDEM_* variable from the caller, and no .env from the repository."""
    for name in list(os.environ):
        if name.startswith("TANDEM_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _settings() -> Settings:
    return Settings(_env_file=None)


def test_defaults() -> None:
    settings = _settings()
    assert settings.env == "development"
    assert settings.database_url == "sqlite+aiosqlite:///tandem.db"
    assert settings.is_sqlite
    assert settings.redis_url is None
    assert settings.secret_key == DEV_SECRET_KEY
    assert settings.default_access is None
    assert settings.access_default == "read-write"
    assert settings.base_url is None
    assert settings.cache_duration == 12 * 3600
    assert settings.keepalive_interval == 30
    assert settings.max_body == 4096


def test_tandem_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_ENV", "testing")
    monkeypatch.setenv("TANDEM_DATABASE_URL", "postgresql+asyncpg://u@db:5432/tandem")
    monkeypatch.setenv("TANDEM_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("TANDEM_SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("TANDEM_DEFAULT_ACCESS", "read-only")
    monkeypatch.setenv("TANDEM_CACHE_DURATION", "2h")
    monkeypatch.setenv("TANDEM_KEEPALIVE_INTERVAL", "45")
    monkeypatch.setenv("TANDEM_BASE_URL", "https://ntfy.example.com")
    monkeypatch.setenv("TANDEM_MAX_BODY", "8192")
    settings = _settings()
    assert settings.env == "testing"
    assert settings.database_url == "postgresql+asyncpg://u@db:5432/tandem"
    assert not settings.is_sqlite
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.secret_key == GOOD_SECRET
    assert settings.access_default == "read-only"
    assert settings.cache_duration == 7200
    assert settings.keepalive_interval == 45
    assert settings.base_url == "https://ntfy.example.com"
    assert settings.max_body == 8192


def test_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("tandem_cache_duration", "1m")
    assert _settings().cache_duration == 60


def test_dotenv_file_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TANDEM_CACHE_DURATION=3h\nTANDEM_ENV=testing\n")
    settings = Settings()
    assert settings.cache_duration == 3 * 3600
    assert settings.env == "testing"


def test_environment_wins_over_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TANDEM_CACHE_DURATION=3h\n")
    monkeypatch.setenv("TANDEM_CACHE_DURATION", "5m")
    assert Settings().cache_duration == 300


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("12h", 43200),
        ("30s", 30),
        ("10m", 600),
        ("3d", 259200),
        ("90", 90),
        ("0s", 0),
        ("1H", 3600),
    ],
)
def test_durations(monkeypatch: pytest.MonkeyPatch, text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    monkeypatch.setenv("TANDEM_CACHE_DURATION", text)
    monkeypatch.setenv("TANDEM_KEEPALIVE_INTERVAL", text)
    settings = _settings()
    assert settings.cache_duration == seconds
    assert settings.keepalive_interval == seconds


def test_keyword_arguments_take_durations_and_numbers() -> None:
    settings = Settings(_env_file=None, cache_duration="1d", keepalive_interval=15)
    assert (settings.cache_duration, settings.keepalive_interval) == (86400, 15)


def test_production_refuses_the_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_ENV", "production")
    with pytest.raises(ValidationError, match="TANDEM_SECRET_KEY must be set in production"):
        _settings()
    monkeypatch.setenv("TANDEM_SECRET_KEY", DEV_SECRET_KEY)
    with pytest.raises(ValidationError, match="TANDEM_SECRET_KEY"):
        _settings()


def test_production_refuses_a_short_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_ENV", "production")
    monkeypatch.setenv("TANDEM_SECRET_KEY", "short")
    with pytest.raises(ValidationError, match="at least 16 characters"):
        _settings()


def test_development_and_testing_accept_the_default_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for env in ("development", "testing"):
        monkeypatch.setenv("TANDEM_ENV", env)
        assert _settings().secret_key == DEV_SECRET_KEY


def test_production_defaults_to_deny_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_ENV", "production")
    monkeypatch.setenv("TANDEM_SECRET_KEY", GOOD_SECRET)
    settings = _settings()
    assert settings.default_access is None
    assert settings.access_default == "deny-all"


@pytest.mark.parametrize("access", ["read-write", "read-only", "write-only", "deny-all"])
@pytest.mark.parametrize("env", ["development", "testing", "production"])
def test_explicit_default_access_wins_in_every_environment(
    monkeypatch: pytest.MonkeyPatch, env: str, access: str
) -> None:
    monkeypatch.setenv("TANDEM_ENV", env)
    monkeypatch.setenv("TANDEM_SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("TANDEM_DEFAULT_ACCESS", access)
    assert _settings().access_default == access


@pytest.mark.parametrize("env", ["development", "testing"])
def test_non_production_defaults_to_read_write(monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    monkeypatch.setenv("TANDEM_ENV", env)
    assert _settings().access_default == "read-write"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TANDEM_ENV", "staging"),
        ("TANDEM_DEFAULT_ACCESS", "everyone"),
        ("TANDEM_DEFAULT_ACCESS", "deny"),
        ("TANDEM_CACHE_DURATION", "forever"),
        ("TANDEM_CACHE_DURATION", "-1h"),
        ("TANDEM_CACHE_DURATION", "10y"),
        ("TANDEM_CACHE_DURATION", "1.5h"),
        ("TANDEM_KEEPALIVE_INTERVAL", "soon"),
        ("TANDEM_MAX_BODY", "0"),
        ("TANDEM_MAX_BODY", "lots"),
        ("TANDEM_DB_POOL_SIZE", "0"),
    ],
)
def test_invalid_values_are_rejected(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as info:
        _settings()
    field = name.removeprefix("TANDEM_").lower()
    assert any(field in map(str, error["loc"]) for error in info.value.errors()), info.value


def test_settings_are_frozen() -> None:
    settings = _settings()
    with pytest.raises(ValidationError):
        settings.env = "production"  # type: ignore[misc]


def test_empty_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # .env.example writes `TANDEM_REDIS_URL=`: copying it to .env must not break start-up.
    monkeypatch.setenv("TANDEM_ENV", "")
    monkeypatch.setenv("TANDEM_REDIS_URL", "")
    monkeypatch.setenv("TANDEM_DEFAULT_ACCESS", "")
    settings = Settings(_env_file=None)
    assert settings.env == "development"
    assert settings.redis_url is None
    assert settings.access_default == "read-write"


@pytest.mark.parametrize(("threads", "slots"), [(1, 0), (2, 0), (3, 1), (4, 2), (8, 6), (16, 12)])
def test_stream_slots_leave_threads_for_ordinary_requests(threads: int, slots: int) -> None:
    from tandem.core.settings import slots_for_threads

    assert slots_for_threads(threads) == slots
