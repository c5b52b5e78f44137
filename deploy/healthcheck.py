#!/usr/bin/env python3
"""Probe a pool's health endpoint: the image's HEALTHCHECK, compose's and the scripts'.

    python3 deploy/healthcheck.py              # GET /readyz of this machine's pool
    python3 deploy/healthcheck.py /healthz     # liveness only
    python3 deploy/healthcheck.py --url http://127.0.0.1:8765/_sim/corpus

The pool's address comes from the same settings the pool reads: `OCR_METRICS_PORT`
(required: the endpoint is off without it) and `OCR_METRICS_HOST` (127.0.0.1 by
default; a wildcard address such as 0.0.0.0 or :: is probed on the loopback).
Exit 0 when the answer is 200, else 1 with one line saying why (the pool's own
reason for a 503, e.g. `not ready: 3 worker crashes in the last 5 min (limit 3)`).
Standard library only: it runs in the slim image, which has no curl.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 4.0
_WILDCARDS = {"", "0.0.0.0", "::", "[::]", "*"}


def probe_url(path: str, environ: dict[str, str]) -> str:
    """The URL of `path` on this machine's pool; ValueError when the endpoint is off."""
    port = environ.get("OCR_METRICS_PORT", "").strip()
    if not port:
        raise ValueError("OCR_METRICS_PORT is not set: the pool serves no /readyz")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"OCR_METRICS_PORT is not a port number (got {port!r})")
    host = environ.get("OCR_METRICS_HOST", "").strip()
    if host in _WILDCARDS:
        host = "::1" if ":" in host else "127.0.0.1"
    host = host.strip("[]")
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{int(port)}{path}"


def check(url: str, timeout: float = TIMEOUT_SECONDS) -> tuple[bool, str]:
    """(healthy, one line) for a GET of `url`."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return True, f"{url}: {answer.status} {_first_line(answer.read())}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: {exc.code} {_first_line(exc.read())}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{url}: no answer ({reason})"


def _first_line(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    return text.splitlines()[0][:300] if text else ""


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--url":
        url = argv[1]
    elif len(argv) <= 1 and all(a.startswith("/") for a in argv):
        try:
            url = probe_url(argv[0] if argv else "/readyz", dict(os.environ))
        except ValueError as exc:
            print(f"healthcheck: {exc}", file=sys.stderr)
            return 1
    else:
        print("usage: healthcheck.py [/readyz|/healthz|/metrics] | --url URL", file=sys.stderr)
        return 2
    healthy, line = check(url)
    print(line, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
