"""The Gemini client (google-genai through the shared limiter) and its request shapes."""

from workers.gemini.client import (
    Answer,
    AnswerCut,
    ClientStats,
    GeminiClient,
    GeminiKeyRefused,
    GeminiRejected,
)
from workers.gemini.request import GeminiRequest, Image, Part, Pdf, Text, estimate_tokens
from workers.gemini.retry import Failure, RetryPolicy, classify_status

__all__ = [
    "Answer",
    "AnswerCut",
    "ClientStats",
    "Failure",
    "GeminiClient",
    "GeminiKeyRefused",
    "GeminiRejected",
    "GeminiRequest",
    "Image",
    "Part",
    "Pdf",
    "RetryPolicy",
    "Text",
    "classify_status",
    "estimate_tokens",
]
