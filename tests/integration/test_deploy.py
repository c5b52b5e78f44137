"""The operator's kit in deploy/: the compose file against the compose-spec schema and
the rules it must keep (health-gated start order, graceful stops, Prometheus on every
pool), the Dockerfile's stages and their copy in image-steps.sh, the systemd unit's
stop settings against the pool's grace period, and the image's health probe against a
real /readyz."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from ruamel.yaml import YAML

from pool.status.health import serve_health
from pool.wiring.settings import Settings
from tests.unit.test_panel import sample_snapshot

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
HEALTHCHECK = DEPLOY / "healthcheck.py"
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
DEFAULT_GRACE = float(Settings.model_fields["ocr_shutdown_grace_seconds"].default)


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = load_yaml(DEPLOY / "compose.yaml")
    assert isinstance(doc, dict)
    return doc


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def pool_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services(compose).items() if s.get("command") == ["start"]}


def seconds(duration: str) -> float:
    """A compose duration such as `660s`, `11m` or `1m30s`."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts, duration
    assert "".join(n + u for n, u in parts) == duration, duration
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


# ---------------------------------------------------------------- compose.yaml


def check_compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_compose_file_follows_the_compose_spec() -> None:
    result = check_compose_schema(DEPLOY / "compose.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_refuses_a_broken_compose_file(tmp_path: Path) -> None:
    broken = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    broken = broken.replace("condition: service_healthy", "condition: when_it_feels_like_it", 1)
    (tmp_path / "compose.yaml").write_text(broken, encoding="utf-8")
    result = check_compose_schema(tmp_path / "compose.yaml")
    assert result.returncode == 1
    assert "when_it_feels_like_it" in result.stdout + result.stderr


def test_the_stack_has_its_services(compose: dict[str, Any]) -> None:
    found = services(compose)
    assert {"postgres", "redis", "simulator", "migrate"} <= found.keys()
    assert len(pool_services(compose)) == 2
    assert found["migrate"]["command"] == ["migrate"]
    assert found["migrate"]["restart"] == "no"
    assert found["prometheus"]["profiles"] == ["monitoring"]
    assert found["demo-documents"]["profiles"] == ["demo"]
    # Nothing but the optional services sits in a profile: `up` starts the stack.
    assert {n for n, s in found.items() if "profiles" in s} == {"prometheus", "demo-documents"}


def test_start_order_waits_on_health_and_on_the_migration(compose: dict[str, Any]) -> None:
    found = services(compose)
    for name, service in found.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in found, f"{name} depends on unknown {target}"
            condition = rule["condition"]
            checks = found[target].get("healthcheck", {})
            if condition == "service_healthy":
                assert checks.get("test"), (name, target)
                assert not checks.get("disable"), (name, target)
            elif condition == "service_completed_successfully":
                assert found[target].get("restart") == "no", (name, target)
            if "profiles" not in service:  # a default service cannot wait on an optional one
                assert "profiles" not in found[target], (name, target)
    for name, pool in pool_services(compose).items():
        needs = pool["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully", name
        assert needs["redis"]["condition"] == "service_healthy", name
    assert found["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_pools_get_longer_to_stop_than_their_grace_period(compose: dict[str, Any]) -> None:
    for name, pool in pool_services(compose).items():
        grace = float(pool["environment"].get("OCR_SHUTDOWN_GRACE_SECONDS", DEFAULT_GRACE))
        assert pool.get("stop_signal", "SIGTERM") == "SIGTERM", name
        assert seconds(pool["stop_grace_period"]) >= grace + 30, name


def test_pools_share_the_stack_and_serve_metrics(compose: dict[str, Any]) -> None:
    pools = pool_services(compose)
    for name, pool in pools.items():
        env = pool["environment"]
        assert env["REDIS_URL"] == "redis://redis:6379/0", name
        assert "@postgres:5432/" in env["DATABASE_URL"], name
        assert env["OCR_METRICS_PORT"] == "9464", name
        assert env["OCR_METRICS_HOST"] == "0.0.0.0", name
        # Published to the loopback only.
        assert all(str(p).startswith("127.0.0.1:") for p in pool.get("ports", [])), name
    # One capacity ledger for the machine they share.
    assert len({p["environment"]["OCR_SERVER_ID"] for p in pools.values()}) == 1


def test_no_secret_is_written_in_the_compose_file(compose: dict[str, Any]) -> None:
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    assert "${POSTGRES_PASSWORD:?" in text
    for service in services(compose).values():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SERVICE_KEY", key):
                assert str(value).startswith("${"), key
    assert not re.search(r"postgresql://[^:@/]+:(?!\$\{)[^@]+@", text)


def test_prometheus_scrapes_every_pool_and_loads_the_rules(compose: dict[str, Any]) -> None:
    config = load_yaml(DEPLOY / "prometheus.yml")
    targets = {
        t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    }
    pools = pool_services(compose)
    assert targets == {
        f"{name}:{p['environment']['OCR_METRICS_PORT']}" for name, p in pools.items()
    }
    mounts = {m.split(":")[1]: m.split(":")[0] for m in services(compose)["prometheus"]["volumes"]}
    for rules in config["rule_files"]:
        assert mounts[rules] == "./prometheus-alerts.yml"
    assert mounts["/etc/prometheus/prometheus.yml"] == "./prometheus.yml"


def test_alert_rules_name_metrics_the_pool_exports() -> None:
    rules = load_yaml(DEPLOY / "prometheus-alerts.yml")
    exported = set(
        re.findall(r'"(ocr_pool_[a-z_]+)"', (ROOT / "pool" / "status" / "metrics.py").read_text())
    )
    assert len(exported) > 20
    names = [r["alert"] for g in rules["groups"] for r in g["rules"]]
    assert len(names) == len(set(names))
    for group in rules["groups"]:
        for rule in group["rules"]:
            for metric in re.findall(r"ocr_pool_[a-z_]+", rule["expr"]):
                assert metric in exported, (rule["alert"], metric)
            assert rule["labels"]["severity"] in {"page", "ticket"}


# ---------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            result.append((word.upper(), " ".join(rest.split())))
    return result


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for word, rest in dockerfile_instructions():
        if word == "FROM":
            result.append([])
        if result:
            result[-1].append((word, rest))
    return result


def uv_syncs(text: str) -> list[list[str]]:
    """The options of every `uv sync` call in the commands of `text` (not its comments)."""
    text = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    calls = re.findall(r"uv\" sync ([^\n&;|]*)|uv sync ([^\n&;|]*)", text)
    return [sorted(shlex.split(a or b)) for a, b in calls]


def test_dockerfile_builds_from_the_lock_in_two_stages() -> None:
    build, final = stages()
    assert build[0][1].endswith(" AS build")
    assert final[0][1] == "${PYTHON_IMAGE}"
    runs = "\n".join(rest for word, rest in build if word == "RUN")
    syncs = uv_syncs(runs)
    assert len(syncs) == 2
    for options in syncs:
        assert {"--frozen", "--no-dev"} <= set(options)
    # The final stage takes only the virtual environment (and the probe) from the build.
    copies = [rest for word, rest in final if word == "COPY"]
    assert any(c.startswith("--from=build /opt/ocr-pool/.venv") for c in copies)
    assert all(
        c.startswith("--from=build") or c.startswith("deploy/healthcheck.py") for c in copies
    )


def test_dockerfile_copies_every_package_of_the_wheel() -> None:
    build = stages()[0]
    copied = {src.rstrip("/") for w, rest in build if w == "COPY" for src in rest.split()[:-1]}
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r"\[tool\.hatch\.build\.targets\.wheel\]\npackages = \[([^\]]*)\]", pyproject)
    assert match
    packages = set(re.findall(r'"([^"]+)"', match.group(1)))
    assert packages <= copied
    assert {"pyproject.toml", "uv.lock", "README.md"} <= copied


def test_image_runs_the_pool_as_an_unprivileged_user_with_a_readiness_probe() -> None:
    final = dict(stages()[1][1:]) | {w: r for w, r in stages()[1] if w in ("ENV", "USER")}
    assert final["ENTRYPOINT"] == '["ocr-pool"]'
    assert final["CMD"] == '["start"]'
    user = final["USER"].split(":")[0]
    assert user not in ("0", "root")
    assert int(user) >= 1000
    assert "/usr/local/bin/ocr-pool-healthcheck" in final["HEALTHCHECK"]
    assert final["HEALTHCHECK"].endswith('"/readyz"]')
    assert "OCR_METRICS_PORT=9464" in final["ENV"]
    assert final["EXPOSE"] == "9464"
    assert final["STOPSIGNAL"] == "SIGTERM"


def test_image_steps_script_makes_the_same_uv_calls_as_the_dockerfile() -> None:
    runs = "\n".join(rest for word, rest in stages()[0] if word == "RUN")
    script = (DEPLOY / "image-steps.sh").read_text(encoding="utf-8")
    calls = [sorted(o for o in call if o != "--quiet") for call in uv_syncs(script)]
    assert calls == uv_syncs(runs)
    # It reads the rest from the Dockerfile itself: uv's version, the build stage's COPY lines.
    assert "ARG UV_VERSION=" in script
    assert "/^COPY /" in script


def test_dockerignore_keeps_the_context_small_and_secret_free() -> None:
    patterns = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for needed in (".git", ".venv", ".env", ".services"):
        assert needed in patterns
    copied = {r.split()[0].rstrip("/") for w, r in stages()[0] + stages()[1] if w == "COPY"}
    assert not copied & set(patterns)


# ---------------------------------------------------------------- systemd unit


def unit() -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in (DEPLOY / "ocr-pool.service").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def test_unit_stops_gracefully_within_its_timeout() -> None:
    service = unit()["Service"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert service["KillMode"] == ["mixed"]
    timeout = (
        seconds(service["TimeoutStopSec"][0])
        if not service["TimeoutStopSec"][0].isdigit()
        else float(service["TimeoutStopSec"][0])
    )
    assert timeout >= DEFAULT_GRACE + 30
    assert service["ExecStart"] == ["/opt/ocr-pool/.venv/bin/ocr-pool start"]
    assert service["EnvironmentFile"] == ["/opt/ocr-pool/.env"]
    assert service["Restart"] == ["on-failure"]
    assert service["RestartPreventExitStatus"] == ["2"]  # a wrong setting: no restart loop
    assert service["User"] != ["root"]


def test_unit_keeps_what_the_pool_needs_under_its_hardening() -> None:
    service = unit()["Service"]
    # Temporary files in a directory of the unit that outlives a restart (the start-up
    # sweep of a killed pool's files), writable under ProtectSystem=strict.
    assert service["ProtectSystem"] == ["strict"]
    assert service["CacheDirectory"] == ["ocr-pool"]
    assert service["Environment"] == ["TMPDIR=%C/ocr-pool"]
    families = service["RestrictAddressFamilies"][0].split()
    assert {"AF_INET", "AF_INET6", "AF_UNIX"} <= set(families)
    assert "PrivateNetwork" not in service
    assert "IPAddressDeny" not in service
    # The pressure guard reads /proc/stat and /proc/meminfo.
    assert "ProcSubset" not in service


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    text = (DEPLOY / "ocr-pool.service").read_text(encoding="utf-8")
    # verify wants an executable ExecStart: point it at this checkout's.
    text = text.replace(
        "/opt/ocr-pool/.venv/bin/ocr-pool", str(Path(sys.executable).with_name("ocr-pool"))
    )
    (tmp_path / "ocr-pool.service").write_text(text, encoding="utf-8")
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "ocr-pool.service")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    assert "ocr-pool.service" not in verify.stderr, verify.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(tmp_path / "ocr-pool.service")],
        capture_output=True,
        text=True,
        check=False,
    )
    level = re.search(r"Overall exposure level for ocr-pool\.service: (\d+\.\d+)", security.stdout)
    assert level, security.stdout + security.stderr
    assert float(level.group(1)) < 3.0


# ---------------------------------------------------------------- the image's probe


def probe_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_METRICS_")}
    env.update(values)
    return env


async def run_probe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return await anyio.run_process([sys.executable, str(HEALTHCHECK), *args], env=env, check=False)


class Readiness:
    def __init__(self) -> None:
        self.value = (False, "warming up: queue not read yet")

    def __call__(self) -> tuple[bool, str]:
        return self.value


@pytest.fixture
def readiness() -> Readiness:
    return Readiness()


@pytest.mark.anyio
async def test_probe_follows_readyz_of_the_configured_port(readiness: Readiness) -> None:
    async with serve_health("127.0.0.1", 0, sample_snapshot, readiness) as server:
        env = probe_env(OCR_METRICS_PORT=str(server.port), OCR_METRICS_HOST="0.0.0.0")
        warming = await run_probe(env)
        assert warming.returncode == 1
        assert b"503 not ready: warming up: queue not read yet" in warming.stderr
        readiness.value = (True, "")
        ready = await run_probe(env)
        assert ready.returncode == 0, ready.stderr
        assert ready.stdout.decode().strip() == f"http://127.0.0.1:{server.port}/readyz: 200 ready"
        live = await run_probe(env, "/healthz")
        assert live.returncode == 0
        assert b"/healthz: 200 ok" in live.stdout
        readiness.value = (False, "3 worker crashes in the last 5 min (limit 3)")
        crashing = await run_probe(env)
        assert crashing.returncode == 1
        assert b"3 worker crashes in the last 5 min" in crashing.stderr


@pytest.mark.anyio
async def test_probe_fails_with_one_line_when_nothing_answers() -> None:
    off = await run_probe(probe_env())
    assert off.returncode == 1
    assert off.stderr.decode().strip() == (
        "healthcheck: OCR_METRICS_PORT is not set: the pool serves no /readyz"
    )
    with socket_port() as port:  # bound, not listening: refused
        closed = await run_probe(probe_env(OCR_METRICS_PORT=str(port)))
    assert closed.returncode == 1
    assert b"no answer" in closed.stderr
    assert len(closed.stderr.splitlines()) == 1
    usage = await run_probe(probe_env(), "readyz")
    assert usage.returncode == 2


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextmanager
def socket_port() -> Iterator[int]:
    """A port number nobody listens on while the block runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port


def test_probe_is_what_the_image_and_compose_run(compose: dict[str, Any]) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY deploy/healthcheck.py /usr/local/bin/ocr-pool-healthcheck" in dockerfile
    simulator_check = services(compose)["simulator"]["healthcheck"]["test"]
    assert simulator_check[:3] == ["CMD", "python3", "/usr/local/bin/ocr-pool-healthcheck"]
