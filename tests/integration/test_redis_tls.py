"""Redis over TLS (`rediss://`): a private TLS redis-server with a throw-away CA; the
CLI reads through it with the CA given in the URL, and refuses a server it cannot
verify."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pool_process import ROOT
from tests.support.redis_server import free_port

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("redis-server") is None,
    reason="needs openssl and redis-server",
)


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 signed by it."""
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    steps = [
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=ocr-pool test CA", "-keyout", ca_key, "-out", ca_crt],
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", key, "-out", csr],
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
         "-CAcreateserial", "-days", "1", "-extfile", ext, "-out", crt],
    ]  # fmt: skip
    for step in steps:
        subprocess.run([str(s) for s in step], check=True, capture_output=True, timeout=60)
    return ca_crt, crt, key


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    ca, crt, key = make_certificates(tmp_path)
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(crt), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
         "--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.skip("this redis-server was built without TLS")
                time.sleep(0.05)
        yield port, ca
    finally:
        process.kill()
        process.wait(10)


def gemini_json(redis_url: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "OCR_REDIS_PREFIX": "tls:",
    }
    return subprocess.run(
        [sys.executable, "-m", "pool.cli", "gemini", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_rediss_with_the_ca_works_and_unverified_is_refused(
    tls_redis: tuple[int, Path], migrated_url: str
) -> None:
    port, ca = tls_redis
    verified = gemini_json(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}", migrated_url)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.strip().startswith("{")
    unverified = gemini_json(f"rediss://127.0.0.1:{port}/0", migrated_url)
    assert unverified.returncode == 1
    assert "certificate verify failed" in unverified.stderr.lower() or "ssl" in (
        unverified.stderr.lower()
    )
    plain = gemini_json(f"redis://127.0.0.1:{port}/0", migrated_url)
    assert plain.returncode == 1  # a TLS port does not speak plain Redis
