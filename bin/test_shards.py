"""Runs the pytest suite as N processes at once, each on its own share of the test modules (conftest.py keeps the
modules of TANGO_TEST_SHARD=k/N) and its own database, Redis database and data folder, so the shards never see each
other's rows, queues or files. The suite runs torch on one thread (conftest.py), so one process keeps one core busy
at most; on two cores two shards take about half the time.

    python bin/test_shards.py N [pytest args]      (./tango test --shards N [pytest args])

Each shard's lines are printed as they come, prefixed with [k/N]; the exit status is the first failing shard's.
"""

import os
import re
import subprocess
import sys
import threading
from pathlib import Path


def shard_env(base: dict, k: int, n: int) -> dict:
    env = {**base, "TANGO_TEST_SHARD": f"{k}/{n}"}
    if env.get("DATABASE_URL"):  # pytest-django makes test_<name>: one per shard
        env["DATABASE_URL"] = f"{env['DATABASE_URL'].rstrip('/')}_shard{k}"
    if env.get("REDIS_URL"):  # a worker of one shard must never take another shard's jobs
        match = re.fullmatch(r"(.*/)(\d+)", env["REDIS_URL"])
        prefix, db = (match.group(1), int(match.group(2))) if match else (env["REDIS_URL"].rstrip("/") + "/", 0)
        env["REDIS_URL"] = f"{prefix}{(db + k - 1) % 16}"
    if env.get("TANGO_DATA_DIR"):
        folder = Path(env["TANGO_DATA_DIR"]) / f"shard{k}"
        folder.mkdir(parents=True, exist_ok=True)
        env["TANGO_DATA_DIR"] = str(folder)
    return env


def relay(k: int, n: int, stream) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.buffer.write(f"[{k}/{n}] ".encode() + line)
        sys.stdout.buffer.flush()


def main(argv: list[str]) -> int:
    n = int(argv[0])
    shards = []
    for k in range(1, n + 1):
        proc = subprocess.Popen([sys.executable, "-m", "pytest", *argv[1:]], env=shard_env(dict(os.environ), k, n),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        thread = threading.Thread(target=relay, args=(k, n, proc.stdout), daemon=True)
        thread.start()
        shards.append((proc, thread))
    codes = []
    for proc, thread in shards:
        codes.append(proc.wait())
        thread.join()
    for k, code in enumerate(codes, 1):
        print(f"shard {k}/{n}: pytest exited {code}")
    return next((code for code in codes if code), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
