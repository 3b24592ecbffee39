"""Settings from the environment: defaults, `_FILE` secrets, flag overrides, one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from liteshift.sidecar.settings import Settings, SettingsError


def test_defaults_follow_the_configuration_contract(tmp_path: Path) -> None:
    settings = Settings.from_env({})
    assert settings.db_url == f"sqlite:///{Path.cwd() / 'liteshift-data' / 'liteshift.db'}"
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert (settings.datastore, settings.namespace) == ("local", "default")
    assert settings.sqlite_synchronous == "FULL"
    assert settings.migrate_on_start is True and settings.media_enabled is False
    assert settings.max_body_bytes == 1048576 and settings.log_format == "text"
    assert settings.resolved_token_dir() == Path.cwd() / "liteshift-data"


def test_environment_and_files_and_flags(tmp_path: Path) -> None:
    (tmp_path / "api").write_text("from-file\n")
    (tmp_path / "url").write_text("postgresql://u:secret@db/x\n")
    env = {
        "LITESHIFT_API_TOKEN_FILE": str(tmp_path / "api"),
        "LITESHIFT_ADMIN_TOKEN": "direct",
        "LITESHIFT_DB_URL_FILE": str(tmp_path / "url"),
        "LITESHIFT_PORT": "9000",
        "LITESHIFT_SQLITE_SYNCHRONOUS": "normal",
        "LITESHIFT_MIGRATE_ON_START": "false",
        "LITESHIFT_DATASTORE": "shop",
        "LITESHIFT_NAMESPACE": "prod",
        "LITESHIFT_TOKEN_DIR": str(tmp_path / "tokens"),
        "LITESHIFT_LOG_FORMAT": "JSON",
    }
    settings = Settings.from_env(env, port=9100, host=None)
    assert settings.api_token == "from-file" and settings.admin_token == "direct"
    assert settings.db_url == "postgresql://u:secret@db/x" and settings.sqlite_path is None
    assert settings.port == 9100 and settings.host == "127.0.0.1"
    assert settings.sqlite_synchronous == "NORMAL" and settings.migrate_on_start is False
    assert (settings.datastore, settings.namespace, settings.log_format) == ("shop", "prod", "json")
    assert settings.resolved_token_dir() == tmp_path / "tokens"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LITESHIFT_PORT": "http"}, "LITESHIFT_PORT: 'http' is not an integer"),
        ({"LITESHIFT_PORT": "70000"}, "LITESHIFT_PORT: 70000 is outside 0..65535"),
        ({"LITESHIFT_SQLITE_SYNCHRONOUS": "OFF"}, "is not one of FULL, NORMAL"),
        ({"LITESHIFT_MIGRATE_ON_START": "perhaps"}, "is not a boolean"),
        ({"LITESHIFT_API_TOKEN_FILE": "/nonexistent/token"}, "cannot read /nonexistent/token"),
        ({"IMAGE_PROCESSING_ENABLED": "true"}, "LITESHIFT_MEDIA_DB_URL: required"),
    ],
)
def test_bad_values_are_one_line_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_empty_token_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SettingsError, match="is empty"):
        Settings.from_env({"LITESHIFT_ADMIN_TOKEN_FILE": str(tmp_path / "empty")})


def test_relative_sqlite_url_is_resolved_once(tmp_path: Path) -> None:
    settings = Settings.from_env({"LITESHIFT_DB_URL": "sqlite:///./data/x.db"})
    assert settings.db_url == f"sqlite:///{os.getcwd()}/data/x.db"
    absolute = Settings.from_env({"LITESHIFT_DB_URL": f"sqlite:///{tmp_path}/y.db"})
    assert absolute.db_url == f"sqlite:///{tmp_path}/y.db"
    # Three slashes and a path not starting with . or .. is absolute (docs/store.md).
    three = Settings.from_env({"LITESHIFT_DB_URL": "sqlite:///tmp/z.db"})
    assert three.db_url == "sqlite:///tmp/z.db"
    assert three.sqlite_path == Path("/tmp/z.db")
