"""Which document a log line is about: its id, type, environment and worker.

A worker sets the document in hand with `about(...)` for the whole of its work on it;
the value is a context variable, so every line logged under it carries the document,
deep in the Gemini client, the limiter or the store included (task groups started
inside inherit it). `DocumentFilter`, on the log handler, copies it onto each record as
the attributes `doc_id`, `doc_type`, `env` and `worker` (fields of their own in JSON
logs, a `[...]` suffix in text logs: `pool.cli.logs`). A line that passes the fields itself
(`extra=fields(...)`) keeps its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

FIELDS = ("doc_id", "doc_type", "env", "worker")
"""The record attributes, in the order text logs show them."""


@dataclass(frozen=True, slots=True)
class Document:
    doc_id: str
    doc_type: str
    env: str
    worker: str

    def fields(self) -> dict[str, str]:
        return {
            "doc_id": self.doc_id,
            "doc_type": self.doc_type,
            "env": self.env,
            "worker": self.worker,
        }


_current: ContextVar[Document | None] = ContextVar("ocr_pool_document", default=None)


def fields(doc_id: object, doc_type: object, env: str, worker: str) -> dict[str, str]:
    """The fields of a line about a document, for `extra=`."""
    return Document(str(doc_id), str(doc_type), env, worker).fields()


@contextmanager
def about(doc_id: object, doc_type: object, env: str, worker: str) -> Iterator[Document]:
    """Lines logged inside the block (in this task and the tasks it starts) are about
    this document."""
    document = Document(str(doc_id), str(doc_type), env, worker)
    token = _current.set(document)
    try:
        yield document
    finally:
        _current.reset(token)


def current() -> Document | None:
    return _current.get()


class DocumentFilter(logging.Filter):
    """Puts the document in hand on every record that does not carry one already."""

    def filter(self, record: logging.LogRecord) -> bool:
        document = _current.get()
        if document is not None:
            for name, value in document.fields().items():
                if not hasattr(record, name):
                    setattr(record, name, value)
        return True
