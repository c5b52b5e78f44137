"""A pool's log lines: level and format from `OCR_LOG_LEVEL` and `OCR_LOG_FORMAT`.

- `text` (default): `2026-05-01 12:00:00,123 INFO    workers: <message>`, and after a line
  about a document ` [doc_id=… doc_type=index env=prod worker=…]`.
- `json`: one object per line (python-json-logger): `timestamp` (ISO 8601, UTC),
  `level`, `logger`, `message`, the document's `doc_id`, `doc_type`, `env`, `worker`
  when the line is about one, anything else passed with `extra=`, and `exc_info` (the
  traceback as text) for an exception.

Lines go to stderr; stdout carries the status (`pool.cli.start.status_printer`), which in
JSON mode is one object of the same shape with the panel under `status`.
"""

from __future__ import annotations

import logging
import sys
from functools import cache
from typing import Any, Literal, TextIO

from workers.log_context import FIELDS, DocumentFilter

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
QUIET_LOGGERS = ("httpx", "httpcore", "google_genai", "google.genai", "aiohttp.access")
"""Their INFO lines name every request; ours say what matters."""


def document_suffix(record: logging.LogRecord) -> str:
    """`doc_id=42 doc_type=index env=prod worker=w1` for a line about a document, else ""."""
    return " ".join(
        f"{name}={value}"
        for name in FIELDS
        if (value := getattr(record, name, None)) is not None and value != ""
    )


class TextFormatter(logging.Formatter):
    """Plain timestamped lines; a line about a document ends with its fields in `[...]`
    (before any traceback)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        about = document_suffix(record)
        return f"{line} [{about}]" if about else line


@cache
def json_formatter() -> logging.Formatter:
    """python-json-logger's formatter, imported only when JSON logs are asked for."""
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
        json_ensure_ascii=False,
    )


def formatter(fmt: LogFormat) -> logging.Formatter:
    return json_formatter() if fmt == "json" else TextFormatter()


class PoolLogHandler(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installs (and replaces on a second call)."""


def configure_logging(
    level: str | int = logging.INFO, fmt: LogFormat = "text", stream: TextIO | None = None
) -> logging.Handler:
    """Every logger's lines, at `level` and above, in `fmt`, on `stream` (stderr)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, PoolLogHandler)]:
        root.removeHandler(old)
    handler = PoolLogHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(DocumentFilter())
    root.addHandler(handler)
    root.setLevel(level)
    quiet = max(logging.WARNING, root.level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    return handler


def json_line(logger: str, message: str, **fields: Any) -> str:
    """One JSON log object (same envelope as the JSON log lines), for what is printed
    rather than logged (the status)."""
    record = logging.LogRecord(logger, logging.INFO, __file__, 0, message, None, None)
    for name, value in fields.items():
        setattr(record, name, value)
    return json_formatter().format(record)
