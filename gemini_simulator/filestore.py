"""The Files API in memory: resumable uploads, files ACTIVE as soon as finalized."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gemini_simulator.errors import ApiError, invalid_argument, missing_file

FILE_LIFETIME = timedelta(hours=48)
_ID_CHARS = string.ascii_lowercase + string.digits
_URI_ID = re.compile(r"(?:^|/)files/([A-Za-z0-9_-]+)/?$")


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}Z"


@dataclass(slots=True)
class StoredFile:
    id: str
    mime_type: str
    data: bytes
    display_name: str | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))

    def resource(self, base_url: str, api_version: str) -> dict[str, Any]:
        """The File resource as Gemini returns it."""
        resource: dict[str, Any] = {"name": f"files/{self.id}"}
        if self.display_name:
            resource["displayName"] = self.display_name
        resource.update(
            {
                "mimeType": self.mime_type,
                "sizeBytes": str(len(self.data)),
                "createTime": _timestamp(self.created),
                "updateTime": _timestamp(self.created),
                "expirationTime": _timestamp(self.created + FILE_LIFETIME),
                "sha256Hash": base64.b64encode(
                    hashlib.sha256(self.data).hexdigest().encode()
                ).decode(),
                "uri": f"{base_url}/{api_version}/files/{self.id}",
                "state": "ACTIVE",
                "source": "UPLOADED",
            }
        )
        return resource


@dataclass(slots=True)
class PendingUpload:
    id: str
    file_id: str
    mime_type: str
    declared_size: int | None
    display_name: str | None
    data: bytearray = field(default_factory=bytearray)


class FileStore:
    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}
        self.uploads: dict[str, PendingUpload] = {}

    def clear(self) -> None:
        self.files.clear()
        self.uploads.clear()

    def _new_id(self) -> str:
        while True:
            file_id = "".join(secrets.choice(_ID_CHARS) for _ in range(12))
            if file_id not in self.files:
                return file_id

    def start(
        self,
        *,
        mime_type: str,
        declared_size: int | None,
        display_name: str | None,
        name: str | None,
    ) -> PendingUpload:
        if name:
            file_id = name.removeprefix("files/")
            if not re.fullmatch(r"[a-z0-9-]{1,40}", file_id):
                raise invalid_argument(
                    f"Invalid file name {name!r}: lower-case letters, digits and dashes only"
                )
            if file_id in self.files or any(u.file_id == file_id for u in self.uploads.values()):
                raise ApiError(409, "ALREADY_EXISTS", f"File files/{file_id} already exists.")
        else:
            file_id = self._new_id()
        upload = PendingUpload(
            id=secrets.token_urlsafe(24),
            file_id=file_id,
            mime_type=mime_type,
            declared_size=declared_size,
            display_name=display_name,
        )
        self.uploads[upload.id] = upload
        return upload

    def append(
        self, upload_id: str, offset: int, chunk: bytes, *, finalize: bool
    ) -> StoredFile | None:
        """Add `chunk` at `offset`; on finalize, the file (the upload session ends)."""
        upload = self.uploads.get(upload_id)
        if upload is None:
            raise ApiError(404, "NOT_FOUND", "No upload session with this upload_id.")
        if offset != len(upload.data):
            raise invalid_argument(
                f"X-Goog-Upload-Offset {offset} does not match the {len(upload.data)} bytes"
                " received so far"
            )
        upload.data += chunk
        if not finalize:
            return None
        del self.uploads[upload_id]
        if upload.declared_size is not None and upload.declared_size != len(upload.data):
            raise invalid_argument(
                f"Upload declared {upload.declared_size} bytes but {len(upload.data)} arrived"
            )
        stored = StoredFile(
            upload.file_id, upload.mime_type, bytes(upload.data), upload.display_name
        )
        self.files[stored.id] = stored
        return stored

    def received(self, upload_id: str) -> int:
        upload = self.uploads.get(upload_id)
        if upload is None:
            raise ApiError(404, "NOT_FOUND", "No upload session with this upload_id.")
        return len(upload.data)

    def get(self, file_id: str) -> StoredFile:
        stored = self.files.get(file_id)
        if stored is None:
            raise missing_file(file_id)
        return stored

    def delete(self, file_id: str) -> None:
        if self.files.pop(file_id, None) is None:
            raise missing_file(file_id)

    def by_uri(self, uri: str) -> StoredFile:
        """The file a `fileData.fileUri` (or a bare `files/ID`) names."""
        match = _URI_ID.search(uri.split("?", 1)[0])
        if match is None:
            raise invalid_argument(f"Invalid file URI {uri!r}")
        return self.get(match.group(1))
