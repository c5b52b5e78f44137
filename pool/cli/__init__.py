"""The `ocr-pool` commands (`app`, `main`) and the demo. Registering them imports no
driver or SDK: each command imports what it needs when it runs."""

from pool.cli.app import app, main

__all__ = ["app", "main"]
