"""Many processes on one server's ledger: 16 racing for a minute never over-allocate
and end at zero; a SIGKILLed holder's share comes back within 2 × the lease
(heartbeat timeout). Checked continuously from Redis by a reader of the keys."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from capacity import DEFAULT_COSTS, Limits, Resources, server_keys
from tests.support.capacity_audit import Audit, snapshot
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SERVER = "racetrack"
RACE_SECONDS = float(os.environ.get("CAPACITY_RACE_SECONDS", "60"))


def spawn(mode: str, url: str, prefix: str, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.capacity_racer",
            mode,
            "--redis-url",
            url,
            "--prefix",
            prefix,
            "--server",
            SERVER,
            "--out",
            str(out),
            *extra,
        ],
        cwd=ROOT,
    )


def summaries(paths: list[Path]) -> list[Counter[str]]:
    found = []
    for path in paths:
        lines = [x for x in path.read_text().splitlines() if x.startswith("summary ")]
        assert lines, f"{path.name}: no summary (the process did not finish its run)"
        found.append(Counter(json.loads(lines[-1].removeprefix("summary "))))
    return found


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sixteen_processes_racing_for_a_minute_never_over_allocate(
    private_redis: RedisServer, redis_prefix: str, tmp_path: Path
) -> None:
    # 10 vCPU / 4 GB with a 25% reserve: 7.5 vCPU / 3 GB to share among 64 holders
    # wanting 1-3 vCPU each, so both dimensions run out all the time.
    limits = Limits(10, 4, 25, 25)
    available = limits.available
    assert available == Resources(7500, 3000)
    keys = server_keys(redis_prefix, SERVER)
    logs = [tmp_path / f"r{n}.log" for n in range(16)]
    procs = [
        spawn(
            "race",
            private_redis.url,
            redis_prefix,
            log,
            "--name",
            f"r{n}",
            "--holders",
            "4",
            "--seconds",
            str(RACE_SECONDS),
            "--max-cpu",
            "10",
            "--max-ram",
            "4",
            "--reserve",
            "25",
        )
        for n, log in enumerate(logs)
    ]
    audit = Audit(available)
    client = redis.Redis.from_url(private_redis.url)
    started = time.monotonic()
    try:
        while any(p.poll() is None for p in procs):
            audit.check(snapshot(client, keys))
            assert time.monotonic() - started < RACE_SECONDS + 90, "racers did not finish"
        codes = [p.wait() for p in procs]
        final = snapshot(client, keys)
        final_raw = [client.get(keys.cpu_allocated), client.get(keys.ram_allocated)]
    finally:
        stop(procs)
        client.close()
    elapsed = time.monotonic() - started
    counts = summaries(logs)
    peak = Resources(
        max(c.pop("peak_cpu_m") for c in counts), max(c.pop("peak_ram_m") for c in counts)
    )
    total = sum(counts, Counter())
    print(f"\nrace: 16 processes x 4 holders for {elapsed:.0f} s; {audit.summary()}")
    print(
        f"race: {total['replies_checked']} acquire replies checked by the racers, "
        f"{total['over_allocated']} over available; peak total in a reply {peak}"
    )
    print(f"race: {dict(sorted(total.items()))}")
    print(f"race: end allocated {final.allocated}, {len(final.leases)} leases")

    assert codes == [0] * 16
    assert audit.violations == []
    assert total["over_allocated"] == 0  # checked on every single acquire's answer too
    assert total["replies_checked"] == total["attempts"] + total["resized"] + sum(
        n for k, n in total.items() if k.startswith("resize_refused")
    )
    assert peak.cpu_m <= available.cpu_m
    assert peak.ram_m <= available.ram_m
    assert audit.max_cpu_m <= available.cpu_m
    assert audit.max_ram_m <= available.ram_m
    assert final.allocated == Resources(0, 0)
    assert final.leases == {}
    assert final_raw == [b"0", b"0"]  # what `redis-cli GET` shows
    # The race was real: thousands of admissions, refusals for lack of room in both
    # dimensions, the ledger often nearly full, and every process got its turn.
    assert total["admitted"] > 1000
    assert total["refused_cpu"] + total["refused_cpu+ram"] > 0
    assert total["refused_ram"] + total["refused_cpu+ram"] > 0
    assert audit.max_cpu_m >= available.cpu_m - 1000
    assert all(c["admitted"] > 0 for c in counts)
    # Holders never lost a lease they were using (TTL 10 s, holds of a few ms).
    assert total["release_lost"] == 0
    assert total["renew_lost"] == 0
    assert total["released"] == total["admitted"]
    assert audit.samples > 1000


@pytest.mark.parametrize("traffic", [True, False], ids=["with-racers", "reaper-only"])
def test_sigkilled_holder_share_returns_within_two_lease_periods(
    private_redis: RedisServer, redis_prefix: str, tmp_path: Path, traffic: bool
) -> None:
    """With racers, their own operations reap the dead leases; without, the pool's
    periodic reaper does (lease + lease/2 at worst)."""
    lease = 3.0  # the heartbeat timeout; holders renew every lease / 3
    limits = Limits(10, 5, 20, 20)  # 8 vCPU / 4 GB available
    available = limits.available
    common = ("--lease", str(lease), "--max-cpu", "10", "--max-ram", "5", "--reserve", "20")
    keys = server_keys(redis_prefix, SERVER)
    client = redis.Redis.from_url(private_redis.url)
    victim_log = tmp_path / "victim.log"
    victim = spawn("hold", private_redis.url, redis_prefix, victim_log, "--name", "victim", *common)
    victim_holders = {"victim-0", "victim-1", "victim-2"}  # registre, index, acte
    victim_share = sum((DEFAULT_COSTS[k] for k in ("registre", "index", "acte")), Resources(0, 0))
    others: list[subprocess.Popen[bytes]] = []
    audit = Audit(available)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if victim_log.exists() and victim_log.read_text().count("held") == 3:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the victim never held its three leases")
        first_held = time.monotonic()
        # The pool's maintenance loop, and maybe three processes racing for what is left.
        others.append(
            spawn("reap", private_redis.url, redis_prefix, tmp_path / "reaper.log", *common)
        )
        racers = [
            spawn(
                "race",
                private_redis.url,
                redis_prefix,
                tmp_path / f"s{n}.log",
                "--name",
                f"s{n}",
                "--holders",
                "3",
                "--seconds",
                "14",
                *common,
            )
            for n in range(3 if traffic else 0)
        ]
        others += racers
        # Let the victim live through two whole lease periods: only heartbeats keep it.
        while time.monotonic() - first_held < 2 * lease + 0.5:
            snap = snapshot(client, keys)
            audit.check(snap)
            assert victim_holders <= set(snap.leases), "the victim lost a lease while alive"
        killed_at = time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        recovered_at = None
        first_after_kill = None
        others_max_after = 0
        while True:
            snap = snapshot(client, keys)
            audit.check(snap)
            present = victim_holders & set(snap.leases)
            if first_after_kill is None:
                first_after_kill = (snap.at - killed_at, present)
            if recovered_at is None and not present:
                recovered_at = snap.at
            if recovered_at is not None:
                assert not present, "a reaped lease came back"
                others_max_after = max(others_max_after, snap.allocated.cpu_m)
            if racers and all(p.poll() is not None for p in racers):
                break
            if not racers and recovered_at is not None and snap.at - recovered_at > 0.5:
                break
            assert time.monotonic() - killed_at < 60
        final = snapshot(client, keys)
    finally:
        stop([victim, *others])
        client.close()

    assert recovered_at is not None, "the killed holder's leases were never reaped"
    recovery = recovered_at - killed_at
    print(
        f"\nsigkill ({'with racers' if traffic else 'reaper only'}): victim held "
        f"{victim_share} for {killed_at - first_held:.1f} s "
        f"(lease {lease} s, renewed every {lease / 3:.1f} s); its share was back "
        f"{recovery:.2f} s after SIGKILL (bound 2 x lease = {2 * lease:.1f} s)"
    )
    print(f"sigkill: {audit.summary()}")
    if traffic:
        print(
            f"sigkill: others used up to {others_max_after / 1000:g} vCPU after recovery "
            f"(at most {(available.cpu_m - victim_share.cpu_m) / 1000:g} while the victim held)"
        )
    assert audit.violations == []
    assert first_after_kill is not None
    # Right after the kill the leases are still there (they were renewed, not short-lived)...
    assert first_after_kill[1] == victim_holders
    # ...and they are gone within two lease periods, with nobody cleaning up by hand.
    assert recovery < 2 * lease
    if traffic:
        # The freed share was really usable: the others took more than was left beside it.
        assert others_max_after > available.cpu_m - victim_share.cpu_m
        assert all(
            c["over_allocated"] == 0 for c in summaries([tmp_path / f"s{n}.log" for n in range(3)])
        )
    else:
        # Nobody else touched the ledger: the reaper bound is lease + its interval.
        assert recovery < lease * 1.5 + 0.5
    assert final.allocated == Resources(0, 0)
    assert final.leases == {}
