"""deploy/image-steps.sh: the Dockerfile's build steps on this host (the lock, no dev
packages, the project outside the source tree) and the container's run (a user that is
not root, migrate, the simulator, a pool reaching /readyz through the HEALTHCHECK
command, documents done, SIGTERM exits 0). CI has no container engine: this is what it
can check of the image."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.databases import REDIS_URL, temporary_database

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "image-steps.sh"

pytestmark = pytest.mark.slow


def test_the_image_steps_build_and_run_a_pool_that_gets_ready_and_stops_cleanly() -> None:
    with temporary_database(migrate=False) as url:
        env = dict(os.environ, DATABASE_URL=url, REDIS_URL=REDIS_URL)
        result = subprocess.run(
            ["bash", str(SCRIPT)],
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    lines = result.stdout.splitlines()
    assert any(
        "no development ones; the project from" in ln and "site-packages" in ln for ln in lines
    )
    run_stage = next(ln for ln in lines if ln.startswith("== run stage as "))
    assert "(uid 0)" not in run_stage
    assert "applied 0001_queue_table" in result.stdout  # the migrate service's step
    assert sum("/readyz: 200 ready" in ln for ln in lines) == 2
    assert "   4 documents done" in lines
    assert "   pool exited 0" in lines
    assert lines[-1] == "image-steps: ok"
