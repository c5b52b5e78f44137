"""Errors of the capacity ledger. Messages are one line and never carry secrets."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from capacity.state import Admission

_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with any password inside a URL replaced by `***`, on one line."""
    return " ".join(_URL_PASSWORD.sub(r"\1***@", text).split())


class CapacityError(Exception):
    """Redis could not be reached or answered with an error."""


class CapacityRefused(CapacityError):
    """The ledger did not admit a lease (no room, pressure, holder taken, or no limits known)."""

    def __init__(self, admission: Admission, message: str | None = None) -> None:
        self.admission = admission
        super().__init__(message or admission.describe())
