"""`LITESHIFT_LOG_FORMAT=json`: one JSON object per line, uvicorn's logs included."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from liteshift.sidecar.logs import JsonFormatter, configure_logging


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_json_lines(restore_root_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json")
    logging.getLogger("uvicorn.error").info("started on %s", "127.0.0.1:8080")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("liteshift.sidecar").exception("failed")
    lines = capsys.readouterr().err.strip().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "started on 127.0.0.1:8080"
    assert (first["level"], first["logger"]) == ("info", "uvicorn.error")
    assert second["level"] == "error" and "ValueError: boom" in second["exception"]


def test_formatter_escapes_newlines() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "a\nb", None, None)
    line = JsonFormatter().format(record)
    assert "\n" not in line and json.loads(line)["message"] == "a\nb"
