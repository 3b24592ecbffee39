"""Generated tokens: 0600 files, reused on restart, never equal; configured ones win."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from liteshift.sidecar.settings import Settings, SettingsError
from liteshift.sidecar.tokens import resolve_tokens


def test_generated_once_written_0600_and_reused(tmp_path: Path) -> None:
    settings = Settings(token_dir=tmp_path / "auth")
    first = resolve_tokens(settings)
    assert first.api != first.admin and len(first.api) >= 40
    assert first.api_file == tmp_path / "auth" / "api-token"
    assert first.admin_file == tmp_path / "auth" / "admin-token"
    for path in (first.api_file, first.admin_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert resolve_tokens(settings) == first


def test_configured_tokens_win_and_write_nothing(tmp_path: Path) -> None:
    tokens = resolve_tokens(Settings(api_token="a", admin_token="b", token_dir=tmp_path / "t"))
    assert (tokens.api, tokens.admin, tokens.api_file, tokens.admin_file) == ("a", "b", None, None)
    assert not (tmp_path / "t").exists()


def test_same_token_for_both_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="must differ"):
        resolve_tokens(Settings(api_token="same", admin_token="same", token_dir=tmp_path))


def test_unwritable_token_dir_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SettingsError, match="LITESHIFT_TOKEN_DIR"):
        resolve_tokens(Settings(token_dir=blocker / "sub"))
