"""Live job log benchmark: emit lines from a worker-side process and time their arrival at N websocket viewers.

    $(bin/venv)/bin/python bench/log_stream.py --mode both --rate 500 --viewers 20 --seconds 10

Each scenario gets its own database and a fresh web server (tango_site.webserver, as deployed):
  embedded  SQLite under a temporary TANGO_DATA_DIR; viewers get lines from the consumer's database poll
            (TANGO_LOG_POLL_SECONDS, one scenario per value of --embedded-poll).
  redis     Postgres database `tango_bench` (created and dropped here) and Redis db 7; JobLog pushes each line
            through the channel layer, the poll only repairs gaps.

The emitter is a separate process calling JobLog(job).write(), paced on a fixed schedule; every line carries its
emit time.time(), so latency = receipt - emit for each (viewer, line), measured on the same host clock.
Results: a table on stdout and JSON in bench/results/log_stream.json.

This script never imports Django itself: settings are read from the environment at import time and each
scenario needs a different one, so the Django side (setup, emitter) runs in child processes of this file.
"""

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from _common import (
    ROOT,
    bench_env,
    child_command,
    child_main,
    parse_result,
    postgres_database,
    run_child,
    start_web,
    summarize,
)

RESULTS = ROOT / "bench" / "results" / "log_stream.json"
PG_DB = "tango_bench"
REDIS_URL = "redis://127.0.0.1:6379/7"
TARGET_P95_MS = 250.0
DRAIN_SECONDS = 10.0  # how long viewers may take to get the last line after the emitter stops


# --- child side: runs under Django with the scenario's environment -------------------------------------------

def child_setup() -> dict:
    """Migrate, create the rows a viewable running job needs, and a logged-in session for the viewers."""
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from projects.jobs.models import Job, JobStatus
    from projects.tests import factories

    call_command("migrate", verbosity=0, interactive=False)
    team = factories.team_with("Bench", bench="owner")
    project = factories.project(team, name="bench")
    # heartbeat_at stays empty so the consumers' periodic reaper never fails the job mid-run.
    job = Job.objects.create(project=project, stage="train", queue="cpu", status=JobStatus.RUNNING,
                             started_at=timezone.now())
    client = Client()
    client.force_login(team.members.get())
    return {"job_id": job.pk, "session": client.cookies[settings.SESSION_COOKIE_NAME].value}


def child_emit(job_id: str, rate: str, seconds: str) -> dict:
    """Write rate*seconds lines on a fixed schedule (line i is due at start + i/rate, so a slow write is caught
    up rather than pushing every later line back) and report how well the writes kept up."""
    from projects.jobs.log import JobLog

    job_id, rate, seconds = int(job_id), float(rate), float(seconds)
    log = JobLog(job_id)
    log.state(status="running")  # what a stage does first; also opens the database and channel-layer connections
    total = int(rate * seconds)
    write_ms, behind_ms = [], 0.0
    cpu0, start = time.process_time(), time.time() + 0.1
    for i in range(total):
        due = start + i / rate
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        t = time.time()
        behind_ms = max(behind_ms, (t - due) * 1000)
        log.write(f"bench line {i + 1} emitted {t:.6f}")
        write_ms.append((time.time() - t) * 1000)
    elapsed = time.time() - start
    return {"lines": total, "rate": round(total / elapsed, 1), "cpu_percent": round(
        100 * (time.process_time() - cpu0) / elapsed, 1), "write_ms": summarize(write_ms),
        "max_behind_schedule_ms": round(behind_ms, 1), "write_ms_each": [round(ms, 2) for ms in write_ms]}


# --- parent side: databases, processes, viewers ---------------------------------------------------------------

def scenario_env(mode: str, poll: float | None, data_dir: Path) -> dict:
    """Settings for one scenario: the bench's (tango_bench and Redis db 7 in redis mode, SQLite under data_dir
    embedded), TANGO_LOG_POLL_SECONDS as given."""
    extra = {"TANGO_LOG_POLL_SECONDS": poll} if poll is not None else {}
    if mode == "redis":
        return bench_env(data_dir, database_url=f"postgres://postgres@127.0.0.1:5432/{PG_DB}", redis_url=REDIS_URL,
                         **extra)
    return bench_env(data_dir, **extra)


def reset_backends(mode: str, create: bool) -> None:
    """Redis mode: a fresh tango_bench database and an empty Redis db 7 (stale channel-layer keys skew runs)."""
    if mode != "redis":
        return
    import redis

    postgres_database(PG_DB, create=create)
    redis.Redis.from_url(REDIS_URL).flushdb()


class Viewer:
    """One websocket client. It only timestamps and parses: keeping it thin keeps the client's own CPU out of
    the measured latency as far as one shared machine allows."""

    def __init__(self, url: str, port: int, session: str):
        self.url, self.port, self.session = url, port, session
        self.receipts: list[tuple[int, float]] = []  # (seq, receipt time) in arrival order, duplicates kept
        self.texts: dict[int, str] = {}
        self.last_seq = 0
        self.ready = asyncio.Event()

    async def run(self) -> None:
        from websockets.asyncio.client import connect

        async with connect(self.url, origin=f"http://127.0.0.1:{self.port}", max_size=None, open_timeout=30,
                           additional_headers={"Cookie": f"sessionid={self.session}"}) as ws:
            async for raw in ws:
                now = time.time()
                message = json.loads(raw)
                if message["type"] == "state":
                    self.ready.set()  # the consumer sends the job's state once subscribed and replayed
                    continue
                for line in message["lines"]:
                    self.receipts.append((line["seq"], now))
                    self.texts.setdefault(line["seq"], line["text"])
                    self.last_seq = max(self.last_seq, line["seq"])


async def watch(viewers: list[Viewer], emit_cmd: list[str], env: dict, drain: float) -> tuple[dict, float]:
    """Connect every viewer, then run the emitter, then wait for the last line to reach everyone (or time out)."""
    tasks = [asyncio.create_task(v.run()) for v in viewers]
    await asyncio.wait_for(asyncio.gather(*(v.ready.wait() for v in viewers)), 60)
    emitter = await asyncio.create_subprocess_exec(*emit_cmd, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await emitter.communicate()
    emitted = parse_result(stdout.decode())
    if emitted is None:
        raise RuntimeError("emitter failed:\n" + stderr.decode()[-3000:])
    deadline = time.monotonic() + drain
    while time.monotonic() < deadline and min(v.last_seq for v in viewers) < emitted["lines"]:
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return emitted, time.time()


def emit_time(text: str) -> float:
    return float(text.rsplit(" ", 1)[1])


def first_receipts(viewer: Viewer) -> tuple[dict[int, float], int]:
    """Each line's first arrival at this viewer, and how many arrivals repeated a line already shown."""
    first: dict[int, float] = {}
    for seq, at in viewer.receipts:
        first.setdefault(seq, at)
    return first, len(viewer.receipts) - len(first)


def measure(viewers: list[Viewer], total: int, write_ms: list[float]) -> dict:
    """Latency over every first receipt of every (viewer, line); losses and duplicates per viewer, summed.

    Where the time goes: after_write_ms leaves out the emitter's insert; first_viewer_ms is a line's way to the
    earliest viewer (push or poll, then one send), fanout_spread_ms how much later the last viewer got it
    (the server's fan-out); worst_second tells a stall from a steady backlog."""
    emitted_at: dict[int, float] = {}
    for v in viewers:
        emitted_at.update({seq: emit_time(text) for seq, text in v.texts.items() if seq not in emitted_at})
    start = min(emitted_at.values(), default=0.0)
    latencies, after_write, by_second, rates, lost, duplicates = [], [], {}, [], 0, 0
    arrivals: dict[int, list[float]] = {}
    for v in viewers:
        first, repeats = first_receipts(v)
        duplicates += repeats
        lost += len(set(range(1, total + 1)) - first.keys())
        for seq, at in first.items():
            ms = (at - emitted_at[seq]) * 1000
            latencies.append(ms)
            after_write.append(ms - write_ms[seq - 1])
            by_second.setdefault(int(emitted_at[seq] - start), []).append(ms)
            arrivals.setdefault(seq, []).append(at)
        if first:  # delivery runs from the first line's emit to this viewer's last receipt
            span = max(first.values()) - emitted_at[min(first)]
            rates.append(len(first) / span if span > 0 else 0.0)
    rates.sort()
    worst = max(by_second.items(), key=lambda item: summarize(item[1])["p95"], default=(None, []))
    first_viewer = [(min(ats) - emitted_at[seq]) * 1000 for seq, ats in arrivals.items()]
    spread = [(max(ats) - min(ats)) * 1000 for ats in arrivals.values()]
    return {"latency_ms": summarize(latencies), "after_write_ms": summarize(after_write),
            "first_viewer_ms": summarize(first_viewer), "fanout_spread_ms": summarize(spread),
            "worst_second": {"second": worst[0], **summarize(worst[1])},
            "lines_per_s_per_viewer": round(rates[len(rates) // 2], 1) if rates else 0.0,
            "lines_per_s_min_viewer": round(rates[0], 1) if rates else 0.0,
            "lost": lost, "duplicates": duplicates, "receipts": len(latencies)}


def run_scenario(mode: str, poll: float | None, args) -> dict:
    name = f"{mode} poll={poll}s" if poll is not None else f"{mode} (poll default)"
    print(f"--- {name}: {args.viewers} viewers, {args.rate:g} lines/s for {args.seconds:g} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="tango-bench-") as tmp:
        env = scenario_env(mode, poll, Path(tmp))
        reset_backends(mode, create=True)
        web = None
        try:
            setup = run_child(__file__, env, "setup", timeout=120)
            web, port = start_web(env, Path(tmp) / "web.log")
            url = f"ws://127.0.0.1:{port}/ws/jobs/{setup['job_id']}/?format=json"
            viewers = [Viewer(url, port, setup["session"]) for _ in range(args.viewers)]
            emit_cmd = child_command(__file__, "emit", setup["job_id"], args.rate, args.seconds)
            cpu0, wall0, client0 = web.cpu_seconds(), time.time(), time.process_time()
            emitted, wall1 = asyncio.run(watch(viewers, emit_cmd, env, DRAIN_SECONDS + (poll or 2.0)))
            wall = wall1 - wall0
            figures = measure(viewers, emitted["lines"], emitted.pop("write_ms_each"))
            result = {"scenario": name, "mode": mode, "poll_seconds": poll, "viewers": args.viewers,
                      "rate": args.rate, "seconds": args.seconds, **figures, "emitter": emitted,
                      "web_cpu_percent": round(100 * (web.cpu_seconds() - cpu0) / wall, 1),
                      "client_cpu_percent": round(100 * (time.process_time() - client0) / wall, 1),
                      "load_avg_1min_after": os.getloadavg()[0]}
            if "Traceback" in web.output():
                result["web_errors"] = web.output()[-2000:]
        finally:
            if web:
                web.stop()
            reset_backends(mode, create=False)
    p95 = result["latency_ms"]["p95"]
    result["meets_target"] = p95 is not None and p95 <= TARGET_P95_MS and result["lost"] == 0
    return result


def print_table(results: list[dict]) -> None:
    header = (f"{'scenario':<22}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}{'lines/s':>9}{'lost':>6}{'dup':>5}"
              f"{'emit/s':>8}{'write p95':>10}{'web%':>8}{'client%':>8}  target")
    print("\n" + header + "\n" + "-" * len(header))
    for r in results:
        lat = r["latency_ms"]
        cells = [f"{lat[k]:>8.1f}" if lat[k] is not None else f"{'-':>8}" for k in ("p50", "p95", "p99", "max")]
        verdict = "ok" if r["meets_target"] else "MISS"
        print(f"{r['scenario']:<22}{''.join(cells)}{r['lines_per_s_per_viewer']:>9.1f}{r['lost']:>6}"
              f"{r['duplicates']:>5}{r['emitter']['rate']:>8.1f}{r['emitter']['write_ms']['p95']:>10.2f}"
              f"{r['web_cpu_percent']:>8.1f}{r['client_cpu_percent']:>8.1f}  {verdict}")
    print(f"(latencies in ms; lines/s = median per viewer; target p95 <= {TARGET_P95_MS:g} ms, nothing lost;"
          f" load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("embedded", "redis", "both"), default="both")
    parser.add_argument("--rate", type=float, default=500.0, help="lines per second written by the emitter")
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--embedded-poll", default="0.2,0.1",
                        help="TANGO_LOG_POLL_SECONDS values for embedded mode, one scenario each")
    parser.add_argument("--redis-poll", type=float, default=None,
                        help="TANGO_LOG_POLL_SECONDS in redis mode (default: the settings' default)")
    args = parser.parse_args()
    results = []
    if args.mode in ("embedded", "both"):
        results += [run_scenario("embedded", float(p), args) for p in args.embedded_poll.split(",")]
    if args.mode in ("redis", "both"):
        results.append(run_scenario("redis", args.redis_poll, args))
    print_table(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"host_cpus": os.cpu_count(), "results": results}, indent=2))
    print(f"JSON: {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    if not child_main({"setup": child_setup, "emit": child_emit}):
        main()
