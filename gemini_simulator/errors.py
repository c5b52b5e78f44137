"""Errors as Gemini writes them: `{"error": {"code", "message", "status", "details"?}}`."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Answered as a Google error body with HTTP `code`."""

    def __init__(
        self, code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(f"{code} {status}: {message}")
        self.code = code
        self.status = status
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


def invalid_argument(message: str) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", message)


def permission_denied(message: str) -> ApiError:
    return ApiError(403, "PERMISSION_DENIED", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", message)


def missing_api_key() -> ApiError:
    return permission_denied(
        "Method doesn't allow unregistered callers (callers without established identity)."
        " Please use API Key or other form of API consumer identity to call this API."
    )


def invalid_api_key() -> ApiError:
    """What Gemini answers to a key it does not know (400, not 401)."""
    return ApiError(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ],
    )


def missing_file(file_id: str) -> ApiError:
    # What Gemini says for a file that does not exist (or is someone else's).
    return permission_denied(
        f"You do not have permission to access the File {file_id} or it may not exist."
    )


def server_error(code: int) -> ApiError:
    if code == 503:
        return ApiError(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
    return ApiError(
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    )
