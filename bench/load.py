"""Load benchmark: concurrent users browse projects and poll jobs while two jobs stream their logs.

    flock /work/coord/bench.lock $(bin/venv)/bin/python bench/load.py --users 50 --seconds 30

Everything is on loopback and bounded in time:
  - Postgres database `tango_load_bench` on the local server (created here, dropped after), seeded with
    --projects projects (10 teams) and --log-lines log lines spread over their finished jobs;
  - a private redis-server on a free port (the channel layer), stopped after;
  - one daphne with DEBUG off, as deployed;
  - two emitter processes writing log lines into two running jobs (persist, then push), and a websocket viewer
    on each;
  - --users HTTP users, each signed in with its own session, looping over the project list page, a project page,
    the API project list, the API job list (polling running jobs) and a streaming job's log (polling ?after=),
    with a random think time between requests.
Per endpoint: requests, requests/s, p50/p95/max latency, errors. Target: p95 <= 200 ms for pages and API lists.
Results: the table on stdout, JSON in bench/results/load.json, and a last line that says MET or MISSED.

The Django side (migrate, seeding, emitters) runs in child processes of this file, with the bench's environment;
the parent never imports Django, so it can never touch another database by accident.
"""

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "load.json"
PG_DB = "tango_load_bench"
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_P95_MS = 200.0
TEAMS = 10
# Endpoints the target applies to: pages and API lists. The rest are reported too.
TARGETED = ("page: project list", "page: project", "api: project list", "api: job list (poll)")


# --- child side: runs under Django with the bench's environment -------------------------------------------------

def child_seed(projects: int, log_lines: int, users: int) -> dict:
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from projects.jobs.models import Job, JobLogLine, JobStatus
    from projects.models import Project
    from projects.tests import factories

    call_command("migrate", verbosity=0, interactive=False)
    device = factories.device("Bench_Board")
    teams = [factories.team_with(f"Team {t}") for t in range(TEAMS)]
    datasets = [factories.dataset(team, f"data-{t}") for t, team in enumerate(teams)]
    Project.objects.bulk_create(
        Project(team=teams[i % TEAMS], name=f"project {i}", task="classification", dataset=datasets[i % TEAMS],
                device=device, engine="onnxruntime", precision="fp32", input_size=32, latency_budget_ms=100)
        for i in range(projects))
    rows = list(Project.objects.order_by("pk"))
    now = timezone.now()
    Job.objects.bulk_create(Job(project=p, stage="recommend", queue="cpu", status=JobStatus.SUCCEEDED, progress=1.0,
                                started_at=now, finished_at=now) for p in rows)
    jobs = list(Job.objects.order_by("pk").values_list("pk", flat=True))
    per_job = max(1, log_lines // len(jobs))
    batch: list = []
    for job_id in jobs:
        batch += [JobLogLine(job_id=job_id, seq=s, text=f"epoch {s}: loss 0.{s:04d} accuracy 0.{9999 - s:04d}")
                  for s in range(1, per_job + 1)]
        if len(batch) >= 20_000:
            JobLogLine.objects.bulk_create(batch)
            batch = []
    JobLogLine.objects.bulk_create(batch)
    # heartbeat_at stays empty, so no reaper fails the streaming jobs mid-run.
    streaming = [Job.objects.create(project=rows[i], stage="train", queue="gpu", status=JobStatus.RUNNING,
                                    started_at=now).pk for i in (0, 1)]
    sessions = []
    for u in range(users):
        team = teams[u % TEAMS]
        user = factories.user(f"user{u}")
        team.memberships.create(user=user, role="editor")
        client = Client()
        client.force_login(user)
        sessions.append(client.cookies[settings.SESSION_COOKIE_NAME].value)
    project_ids = {t: [p.pk for p in rows if p.team_id == team.pk] for t, team in enumerate(teams)}
    return {"sessions": sessions, "streaming": streaming, "projects": project_ids,
            "log_lines": JobLogLine.objects.count(), "project_count": Project.objects.count()}


def child_emit(job_id: int, rate: float, seconds: float) -> dict:
    """Write log lines on a fixed schedule through the runtime's writer (persist, then push)."""
    from projects.jobs.log import JobLog

    log = JobLog(job_id)
    log.state(status="running")
    total = int(rate * seconds)
    start = time.time()
    for i in range(total):
        delay = start + i / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        log.write(f"bench line {i + 1}")
    return {"lines": total, "seconds": round(time.time() - start, 1)}


def child_main(role: str, args: list[str]) -> None:
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    if role == "seed":
        result = child_seed(int(args[0]), int(args[1]), int(args[2]))
    else:
        result = child_emit(int(args[0]), float(args[1]), float(args[2]))
    print("RESULT " + json.dumps(result), flush=True)


# --- parent side ---------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_env(data_dir: Path, redis_port: int) -> dict:
    """Team mode on loopback: inherited DATABASE_URL/REDIS_URL are replaced, so no one else's data is touched."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "TANGO_SQLITE_NAME")}
    env.update(DJANGO_SETTINGS_MODULE="tango_site.settings", TANGO_DATA_DIR=str(data_dir), DEBUG="0",
               SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="127.0.0.1,localhost", PYTHONUNBUFFERED="1",
               LOG_LEVEL="WARNING", DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{PG_DB}",
               REDIS_URL=f"redis://127.0.0.1:{redis_port}/0")
    return env


def run_child(env: dict, role: str, *args, timeout: float = 600) -> dict:
    out = subprocess.run([sys.executable, __file__, f"--child={role}", *map(str, args)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=timeout)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{role} child failed (rc {out.returncode}):\n{out.stderr[-3000:]}")


def database(create: bool) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        if create:
            conn.execute(f"CREATE DATABASE {PG_DB}")


class Proc:
    def __init__(self, args: list[str], env: dict | None, log_path: Path):
        self.log = log_path.open("w")
        self.log_path = log_path
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def wait_http(url: str, proc: Proc, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urlopen(url, timeout=2):
                return
        except OSError:
            if proc.proc.poll() is not None:
                break
            time.sleep(0.3)
    raise RuntimeError("daphne did not start:\n" + proc.log_path.read_text()[-3000:])


def percentile(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def user_loop(base: str, session: str, projects: list[int], streaming: list[int], stop_at: float,
                    think: float, samples: dict, errors: dict, rng: random.Random) -> None:
    import httpx

    cursors = {job: 0 for job in streaming}
    async with httpx.AsyncClient(base_url=base, cookies={"sessionid": session}, timeout=30) as client:
        while time.monotonic() < stop_at:
            job = rng.choice(streaming)
            pages = max(1, len(projects) // 50)
            choices = [
                ("page: project list", "/"),
                ("page: project", f"/projects/{rng.choice(projects)}/"),
                ("api: project list", f"/api/projects/?page={rng.randint(1, pages)}"),
                ("api: job list (poll)", "/api/jobs/?status=running"),
                ("api: job log (poll)", f"/api/jobs/{job}/log/?after={cursors[job]}"),
            ]
            for label, path in choices:
                t = time.perf_counter()
                try:
                    response = await client.get(path)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok, response = False, None
                elapsed = (time.perf_counter() - t) * 1000
                if ok:
                    samples.setdefault(label, []).append(elapsed)
                    if label.startswith("api: job log"):
                        cursors[job] = response.json()["next_after"]
                else:
                    errors[label] = errors.get(label, 0) + 1
                await asyncio.sleep(rng.uniform(0.5, 1.5) * think)
                if time.monotonic() >= stop_at:
                    break


async def viewer(port: int, session: str, job_id: int, stop_at: float, counts: dict) -> None:
    from websockets.asyncio.client import connect

    url = f"ws://127.0.0.1:{port}/ws/jobs/{job_id}/?format=json"
    headers = {"Cookie": f"sessionid={session}", "Origin": f"http://127.0.0.1:{port}"}
    try:
        async with connect(url, additional_headers=headers, open_timeout=20) as ws:
            while time.monotonic() < stop_at:
                try:
                    await asyncio.wait_for(ws.recv(), timeout=max(0.1, stop_at - time.monotonic()))
                    counts[job_id] = counts.get(job_id, 0) + 1
                except TimeoutError:
                    break
    except Exception as exc:  # reported with the results rather than ending the run
        counts[f"{job_id} error"] = f"{type(exc).__name__}: {exc}"


async def drive(port: int, seed: dict, users: int, seconds: float, warmup: float, think: float) -> dict:
    base = f"http://127.0.0.1:{port}"
    samples: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    counts: dict[int, int] = {}
    stop_at = time.monotonic() + warmup + seconds
    rng = random.Random(7)
    sessions = seed["sessions"]
    tasks = [asyncio.create_task(viewer(port, sessions[i], job, stop_at, counts))
             for i, job in enumerate(seed["streaming"])]
    tasks += [asyncio.create_task(user_loop(base, sessions[u], seed["projects"][str(u % TEAMS)], seed["streaming"],
                                            stop_at, think, samples, errors, random.Random(rng.random())))
              for u in range(users)]
    await asyncio.sleep(warmup)
    for values in samples.values():  # what came in during the warm-up is not measured
        values.clear()
    errors.clear()
    measured_from = time.monotonic()
    await asyncio.gather(*tasks, return_exceptions=False)
    return {"samples": samples, "errors": errors, "ws_messages": counts,
            "measured_seconds": time.monotonic() - measured_from}


def report(result: dict, args, seed: dict) -> dict:
    rows = []
    for label in (*TARGETED, "api: job log (poll)"):
        values = sorted(result["samples"].get(label, []))
        n = len(values)
        rows.append({
            "endpoint": label, "requests": n, "rps": round(n / result["measured_seconds"], 1),
            "p50_ms": round(percentile(values, 50), 1) if n else None,
            "p95_ms": round(percentile(values, 95), 1) if n else None,
            "max_ms": round(values[-1], 1) if n else None,
            "errors": result["errors"].get(label, 0), "targeted": label in TARGETED,
        })
    print(f"\n{args.users} users, {args.seconds:.0f} s measured (after {args.warmup:.0f} s warm-up), think time "
          f"~{args.think:.1f} s; {seed['project_count']} projects, {seed['log_lines']} log lines in Postgres; two jobs "
          f"streaming at {args.emit_rate:.0f} lines/s each\n")
    print(f"{'endpoint':<24}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'errors':>8}")
    for row in rows:
        def fmt(v):
            return "-" if v is None else f"{v:.1f}"

        print(f"{row['endpoint']:<24}{row['requests']:>9}{row['rps']:>8.1f}{fmt(row['p50_ms']):>9}"
              f"{fmt(row['p95_ms']):>9}{fmt(row['max_ms']):>9}{row['errors']:>8}")
    total = sum(r["requests"] for r in rows)
    print(f"{'all':<24}{total:>9}{total / result['measured_seconds']:>8.1f}")
    print(f"websocket messages received by the two viewers: {result['ws_messages']}")
    worst = max((r["p95_ms"] or float("inf")) for r in rows if r["targeted"])
    met = worst <= TARGET_P95_MS and not any(r["errors"] for r in rows)
    return {"rows": rows, "worst_targeted_p95_ms": worst, "met": met, "ws_messages": result["ws_messages"],
            "users": args.users, "seconds": args.seconds, "think_s": args.think, "emit_rate": args.emit_rate,
            "projects": seed["project_count"], "log_lines": seed["log_lines"], "target_p95_ms": TARGET_P95_MS,
            "host_cpus": os.cpu_count(), "load_avg_at_end": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--think", type=float, default=1.0, help="mean pause between a user's requests (s)")
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--log-lines", type=int, default=100_000)
    parser.add_argument("--emit-rate", type=float, default=20, help="lines/s written to each streaming job")
    args, rest = parser.parse_known_args()
    if args.child:
        return child_main(args.child, rest)

    work = Path(tempfile.mkdtemp(prefix="tango-load-"))
    redis_port = free_port()
    redis = Proc(["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "", "--appendonly",
                  "no"], None, work / "redis.log")
    env = bench_env(work / "data", redis_port)
    processes = [redis]
    try:
        database(create=True)
        t = time.monotonic()
        seed = run_child(env, "seed", args.projects, args.log_lines, args.users)
        print(f"Seeded {seed['project_count']} projects and {seed['log_lines']} log lines in "
              f"{time.monotonic() - t:.0f} s.")
        # Emitters first: they take seconds to start Django, and must be writing before measuring starts.
        duration = args.warmup + args.seconds + 30
        processes += [Proc([sys.executable, __file__, "--child=emit", str(job), str(args.emit_rate), str(duration)],
                           env, work / f"emit-{job}.log") for job in seed["streaming"]]
        port = free_port()
        daphne = Proc([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                       "tango_site.asgi:application"], env, work / "daphne.log")
        processes.append(daphne)
        wait_http(f"http://127.0.0.1:{port}/accounts/login/", daphne)
        result = asyncio.run(drive(port, seed, args.users, args.seconds, args.warmup, args.think))
        summary = report(result, args, seed)
    finally:
        for proc in reversed(processes):
            proc.stop()
        database(create=False)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"JSON: {RESULTS.relative_to(ROOT)}")
    print(f"worst p95 of pages and API lists {summary['worst_targeted_p95_ms']:.0f} ms vs target "
          f"{TARGET_P95_MS:.0f} ms with {args.users} users … {'MET' if summary['met'] else 'MISSED'}")


if __name__ == "__main__":
    main()
