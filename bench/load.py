"""Load benchmark: concurrent users browse projects and poll jobs while two jobs stream their logs.

    $(bin/venv)/bin/python bench/load.py --users 50 --seconds 30   # with nothing else running on the host

Everything is on loopback and bounded in time:
  - Postgres database `tango_load_bench` on the local server (created here, dropped after), seeded with
    --projects projects (10 teams) and --log-lines log lines spread over their finished jobs;
  - a private redis-server on a free port (the channel layer), stopped after;
  - the web server as deployed in team mode (tango_site.webserver: --web-workers uvicorn processes, DEBUG off);
  - two emitter processes writing log lines into two running jobs (persist, then push), and a websocket viewer
    on each. Both jobs belong to a "Live" team every user is a viewer of, so every user may poll them;
  - --users HTTP users, each signed in with its own session and one keep-alive connection, looping over the
    project list page, a project page, the API project list, the API job list (polling running jobs) and a
    streaming job's log (polling ?after=), with a random think time between requests.
Before the load, one request of each endpoint is profiled in a child (queries, server time, no concurrency).
Per endpoint: requests, requests/s, p50/p95/max latency, errors. Target: p95 <= 200 ms for pages and API lists.
Results: the table on stdout, JSON in bench/results/load.json, and a last line that says MET or MISSED.
"""

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from pathlib import Path

from _common import (
    ROOT,
    Proc,
    bench_env,
    child_command,
    child_main,
    free_port,
    host_busy_seconds,
    postgres_database,
    run_child,
    start_web,
    summarize,
)

RESULTS = ROOT / "bench" / "results" / "load.json"
PG_DB = "tango_load_bench"
TARGET_P95_MS = 200.0
TEAMS = 10
LIVE_TEAM = "Live"
# Endpoints the target applies to: pages and API lists. The job log poll is reported too.
TARGETED = ("page: project list", "page: project", "api: project list", "api: job list (poll)")
LOG_POLL = "api: job log (poll)"
API_PAGE_SIZE = 50  # REST_FRAMEWORK PAGE_SIZE


def endpoints(projects: list[int], job: int, after: int, rng: random.Random) -> list[tuple[str, str]]:
    """One round of a user's requests, in order."""
    pages = max(1, len(projects) // API_PAGE_SIZE)
    return [
        ("page: project list", "/"),
        ("page: project", f"/projects/{rng.choice(projects)}/"),
        ("api: project list", f"/api/projects/?page={rng.randint(1, pages)}"),
        ("api: job list (poll)", "/api/jobs/?status=running"),
        (LOG_POLL, f"/api/jobs/{job}/log/?after={after}"),
    ]


# --- child side: runs under Django with the bench's environment -------------------------------------------------

def child_seed(projects: str, log_lines: str, users: str) -> dict:
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from projects.jobs.models import Job, JobLogLine, JobStatus
    from projects.models import Project
    from projects.tests import factories

    projects, log_lines, users = int(projects), int(log_lines), int(users)
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
    # Two running jobs in a team every user views. heartbeat_at stays empty, so no reaper fails them mid-run.
    live = factories.team_with(LIVE_TEAM)
    live_data = factories.dataset(live, "live-data")
    streaming = [Job.objects.create(project=factories.project(live, f"live {i}", device=device, dataset=live_data),
                                    stage="train", queue="gpu", status=JobStatus.RUNNING, started_at=now).pk
                 for i in (0, 1)]
    sessions = []
    for u in range(users):
        user = factories.user(f"user{u}")
        teams[u % TEAMS].memberships.create(user=user, role="editor")
        live.memberships.create(user=user, role="viewer")
        client = Client()
        client.force_login(user)
        sessions.append(client.cookies[settings.SESSION_COOKIE_NAME].value)
    project_ids = {t: [p.pk for p in rows if p.team_id == team.pk] for t, team in enumerate(teams)}
    return {"sessions": sessions, "streaming": streaming, "projects": project_ids,
            "log_lines": JobLogLine.objects.count(), "project_count": Project.objects.count()}


def child_profile(seed_json: str) -> dict:
    """Each endpoint once as user0, after a warm-up request: its status, database queries and server time."""
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from projects.models import Project

    seed = json.loads(seed_json)
    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies["sessionid"] = seed["sessions"][0]
    rng = random.Random(1)
    paths = endpoints(seed["projects"]["0"], seed["streaming"][0], 0, rng)
    profile = {}
    for label, path in paths:
        client.get(path)  # warm: templates compiled, connection open
        reset_queries()
        with CaptureQueriesContext(connection) as queries:
            t = time.perf_counter()
            response = client.get(path)
            ms = (time.perf_counter() - t) * 1000
        profile[label] = {"status": response.status_code, "queries": len(queries), "server_ms": round(ms, 1),
                          "bytes": len(response.content)}
    profile["_projects_per_user"] = Project.objects.filter(team__memberships__user__username="user0").count()
    return profile


def child_emit(job_id: str, rate: str, seconds: str) -> dict:
    """Write log lines on a fixed schedule through the runtime's writer (persist, then push)."""
    from projects.jobs.log import JobLog

    rate = float(rate)
    log = JobLog(int(job_id))
    log.state(status="running")
    total = int(rate * float(seconds))
    start = time.time()
    for i in range(total):
        delay = start + i / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        log.write(f"bench line {i + 1}")
    return {"lines": total, "seconds": round(time.time() - start, 1)}


# --- parent side ---------------------------------------------------------------------------------------------------

class HttpError(Exception):
    """The connection broke or the answer could not be read."""


class Connection:
    """One keep-alive HTTP/1.1 connection, as a browser tab holds (GET only).

    The load generator shares the host's two cores with the server it measures: httpx cost ~2.5 ms of CPU per
    request here, time taken from the server under test. This reads exactly what the bench needs (status, body by
    Content-Length or chunked) on asyncio's streams, and reconnects once when the server closed an idle connection.
    """

    def __init__(self, host: str, port: int, cookie: str, timeout: float):
        self.host, self.port, self.timeout = host, port, timeout
        self.head = f"Host: {host}:{port}\r\nCookie: sessionid={cookie}\r\nAccept: */*\r\n\r\n".encode()
        self.reader = self.writer = None

    async def get(self, path: str) -> tuple[int, bytes]:
        for attempt in (0, 1):
            fresh = self.writer is None
            try:
                if fresh:
                    self.reader, self.writer = await asyncio.wait_for(
                        asyncio.open_connection(self.host, self.port), self.timeout)
                self.writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self.head)
                return await asyncio.wait_for(self._response(), self.timeout)
            except (OSError, asyncio.IncompleteReadError, HttpError) as exc:
                self.close()
                if fresh or attempt:  # a broken fresh connection is an error; a stale kept-alive one is retried once
                    raise HttpError(type(exc).__name__) from exc
            except TimeoutError:
                self.close()
                raise HttpError("TimeoutError") from None
        raise AssertionError("unreachable")

    async def _response(self) -> tuple[int, bytes]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            body = b"".join(p[:-2] for p in parts)
        else:
            raise HttpError("no Content-Length")
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def user_loop(port: int, session: str, projects: list[int], streaming: list[int], stop_at: float,
                    think: float, samples: dict, errors: dict, rng: random.Random) -> None:
    cursors = {job: 0 for job in streaming}
    client = Connection("127.0.0.1", port, session, timeout=30)  # a browser tab: one connection
    try:
        while time.monotonic() < stop_at:
            job = rng.choice(streaming)
            for label, path in endpoints(projects, job, cursors[job], rng):
                t = time.perf_counter()
                try:
                    status, body = await client.get(path)
                    what = None if status == 200 else f"HTTP {status}"
                except HttpError as exc:
                    what = str(exc)
                elapsed = (time.perf_counter() - t) * 1000
                if what is None:
                    samples.setdefault(label, []).append(elapsed)
                    if label == LOG_POLL:
                        cursors[job] = json.loads(body)["next_after"]
                else:  # counted, and the first of each kind kept to say what went wrong
                    errors.setdefault(label, {}).setdefault(what, 0)
                    errors[label][what] += 1
                await asyncio.sleep(rng.uniform(0.5, 1.5) * think)
                if time.monotonic() >= stop_at:
                    break
    finally:
        client.close()


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


async def drive(port: int, seed: dict, args, web: Proc) -> dict:
    samples: dict[str, list[float]] = {}
    errors: dict[str, dict] = {}
    counts: dict = {}
    stop_at = time.monotonic() + args.warmup + args.seconds
    rng = random.Random(7)
    sessions = seed["sessions"]
    tasks = [asyncio.create_task(viewer(port, sessions[i], job, stop_at, counts))
             for i, job in enumerate(seed["streaming"])]
    tasks += [asyncio.create_task(user_loop(port, sessions[u], seed["projects"][str(u % TEAMS)], seed["streaming"],
                                            stop_at, args.think, samples, errors, random.Random(rng.random())))
              for u in range(args.users)]
    await asyncio.sleep(args.warmup)
    for values in samples.values():  # what came in during the warm-up is not measured
        values.clear()
    errors.clear()
    measured_from = time.monotonic()
    cpu = {"web": web.cpu_seconds(), "client": time.process_time(), "host": host_busy_seconds()}
    await asyncio.sleep(min(5.0, args.seconds / 2))
    connections = web.connections(port)  # the users' kept-alive connections, per web process
    await asyncio.gather(*tasks)
    seconds = time.monotonic() - measured_from
    cpu = {"web": (web.cpu_seconds() - cpu["web"]) / seconds,
           "client": (time.process_time() - cpu["client"]) / seconds,
           "host": (host_busy_seconds() - cpu["host"]) / seconds}
    return {"samples": samples, "errors": errors, "ws_messages": counts, "measured_seconds": seconds,
            "connections_per_web_process": connections, "cpu_cores": {k: round(v, 2) for k, v in cpu.items()}}


def report(result: dict, args, seed: dict, profile: dict) -> dict:
    rows = []
    for label in (*TARGETED, LOG_POLL):
        figures = summarize(result["samples"].get(label, []))
        n = len(result["samples"].get(label, []))
        errors = result["errors"].get(label, {})
        rows.append({"endpoint": label, "requests": n, "rps": round(n / result["measured_seconds"], 1),
                     "p50_ms": figures["p50"], "p95_ms": figures["p95"], "max_ms": figures["max"],
                     "errors": sum(errors.values()), "error_kinds": errors, "targeted": label in TARGETED,
                     "queries": profile[label]["queries"], "alone_ms": profile[label]["server_ms"]})
    print(f"\n{args.users} users, {args.seconds:.0f} s measured (after {args.warmup:.0f} s warm-up), think time "
          f"~{args.think:.1f} s; {seed['project_count']} projects ({profile['_projects_per_user']} per user), "
          f"{seed['log_lines']} log lines in Postgres; two jobs streaming at {args.emit_rate:.0f} lines/s each; "
          f"{args.web_workers} web worker process(es)\n")
    print(f"{'endpoint':<22}{'requests':>9}{'req/s':>7}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}{'errors':>7}"
          f"{'queries':>8}{'alone ms':>9}")

    def fmt(v):
        return "-" if v is None else f"{v:.1f}"

    for row in rows:
        print(f"{row['endpoint']:<22}{row['requests']:>9}{row['rps']:>7.1f}{fmt(row['p50_ms']):>8}"
              f"{fmt(row['p95_ms']):>8}{fmt(row['max_ms']):>8}{row['errors']:>7}{row['queries']:>8}"
              f"{row['alone_ms']:>9.1f}")
    total = sum(r["requests"] for r in rows)
    print(f"{'all':<22}{total:>9}{total / result['measured_seconds']:>7.1f}")
    print("(queries and 'alone ms': one request of each, profiled in-process before the load)")
    for row in rows:
        if row["error_kinds"]:
            print(f"errors on {row['endpoint']}: {row['error_kinds']}")
    print(f"websocket messages received by the two viewers: {result['ws_messages']}")
    cores = result["cpu_cores"]
    served = sum(r["requests"] for r in rows)
    print(f"connections per web process: {result['connections_per_web_process']}; web server CPU per request "
          f"{1000 * cores['web'] * result['measured_seconds'] / max(1, served):.1f} ms")
    print(f"CPU used while measured, in cores: web server {cores['web']}, load generator {cores['client']}, "
          f"everything else (Postgres, Redis, emitters, other work on the host) "
          f"{max(0.0, cores['host'] - cores['web'] - cores['client']):.2f}; host busy {cores['host']} of "
          f"{os.cpu_count()}")
    worst = max((r["p95_ms"] if r["p95_ms"] is not None else float("inf")) for r in rows if r["targeted"])
    met = worst <= TARGET_P95_MS and not any(r["errors"] for r in rows)
    return {"rows": rows, "worst_targeted_p95_ms": worst, "met": met, "ws_messages": result["ws_messages"],
            "cpu_cores": result["cpu_cores"], "connections_per_web_process": result["connections_per_web_process"],
            "users": args.users, "seconds": args.seconds, "think_s": args.think,
            "emit_rate": args.emit_rate, "web_workers": args.web_workers, "projects": seed["project_count"],
            "log_lines": seed["log_lines"], "target_p95_ms": TARGET_P95_MS, "host_cpus": os.cpu_count(),
            "load_avg_at_end": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--think", type=float, default=1.0, help="mean pause between a user's requests (s)")
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--log-lines", type=int, default=100_000)
    parser.add_argument("--emit-rate", type=float, default=20, help="lines/s written to each streaming job")
    parser.add_argument("--web-workers", type=int, default=2, help="web server processes (tango_site.webserver)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tango-load-"))
    redis_port = free_port()
    redis = Proc(["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "", "--appendonly",
                  "no"], None, work / "redis.log")
    processes = [redis]
    try:
        env = bench_env(work / "data", database_url=postgres_database(PG_DB, create=True),
                        redis_url=f"redis://127.0.0.1:{redis_port}/0")
        t = time.monotonic()
        seed = run_child(__file__, env, "seed", args.projects, args.log_lines, args.users)
        print(f"Seeded {seed['project_count']} projects and {seed['log_lines']} log lines in "
              f"{time.monotonic() - t:.0f} s.", flush=True)
        profile = run_child(__file__, env, "profile", json.dumps(seed))
        # Emitters first: they take seconds to start Django, and must be writing before measuring starts.
        duration = args.warmup + args.seconds + 30
        processes += [Proc(child_command(__file__, "emit", job, args.emit_rate, duration), env,
                           work / f"emit-{job}.log") for job in seed["streaming"]]
        web, port = start_web(env, work / "web.log", workers=args.web_workers)
        processes.append(web)
        result = asyncio.run(drive(port, seed, args, web))
        summary = report(result, args, seed, profile)
        if "Traceback" in web.output():
            print("The web server logged errors:\n" + web.output()[-3000:])
    finally:
        for proc in reversed(processes):
            proc.stop()
        postgres_database(PG_DB, create=False)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"JSON: {RESULTS.relative_to(ROOT)}")
    verdict = "MET" if summary["met"] else "MISSED"
    print(f"worst p95 of pages and API lists {summary['worst_targeted_p95_ms']:.0f} ms vs target "
          f"{TARGET_P95_MS:.0f} ms with {args.users} users, no errors allowed … {verdict}")


if __name__ == "__main__":
    if not child_main({"seed": child_seed, "profile": child_profile, "emit": child_emit}):
        main()
