"""The queue's words: the two kinds of document, the status ids of `extraction_status`,
a row id. Plain values every layer may use: importing them loads no store or driver."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

JobId = UUID | int | str
"""A row id as the database returns it (uuid in a table made by the migration;
a production table may use bigint). Passed back to the store untouched."""


class DocumentSource(StrEnum):
    INDEX = "index"
    ACTE = "acte"


class Status:
    """`extraction_status` ids."""

    WAITING = 1
    EXTRACTING = 2
    READY_FOR_OCR = 3
    ERROR = 4
    OCR_COMPLETE = 5
    OCR_IN_PROGRESS = 6
