"""The portal's web server: several uvicorn processes accepting on one listening socket.

    python -m tango_site.webserver [--host 127.0.0.1] [--port 8000] [--workers N]

One process runs every sync Django view on a thread pool under one interpreter lock, so it serves at most one
core's worth of Python however many the host has: under 50 users (bench/load.py) the requests queued behind each
other and the slowest pages took seconds. Here the parent binds the socket once and starts N children that all
accept on it; the kernel hands each connection to one of them. The children start accepting together, once every
one has loaded Django, and the busiest lets a new connection go to a less busy one (SharedListener), so kept-alive
connections spread over them instead of piling onto one process.

Each child is uvicorn with httptools' HTTP parser. It replaced daphne (Twisted), whose own parsing and hand-offs
cost a few ms of CPU per request more (10 connections in a row against one process, the same requests: 23-27 ms
per request under daphne, 20-24 under uvicorn, on a busy host; asyncio's loop measured as fast as uvloop's, so
uvloop is not used). uvicorn keeps no access log here (the proxy in front of a deployment has one; a line per
request costs CPU), trusts no X-Forwarded-* headers itself (Django's settings decide that: TANGO_HTTPS,
TANGO_PROXY_COUNT) and closes a kept-alive connection idle for a minute.

Websockets work from any child: in team mode the channel layer is Redis, shared by every process; in embedded mode
a console reads new lines from the database (a worker is a process of its own there already).

Workers: --workers, else TANGO_WEB_WORKERS, else one per CPU (at most 4) in team mode and 1 in embedded mode (one
user; each process holds its own copy of Django, ~150 MB). The parent imports no Django, stops every child on
SIGTERM/SIGINT, and each child gets SIGTERM if the parent dies without doing so (PR_SET_PDEATHSIG). A child that
dies stops the server with a message, as a crash loop would only hide a broken install; `tango serve` and
compose's restart policy decide what happens next.
"""

import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import time

from tango_common.processes import die_with_parent
from tango_site.env import env_int

STOP_SECONDS = 10.0  # after SIGTERM, what a child gets to finish its responses before SIGKILL
KEEPALIVE_SECONDS = 60  # an idle kept-alive connection is closed after this (uvicorn's 5 s is short for a tab)


def default_workers() -> int:
    team_mode = bool(os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL"))
    return env_int("TANGO_WEB_WORKERS", min(os.cpu_count() or 1, 4) if team_mode else 1, minimum=1)


def listen(host: str, port: int) -> socket.socket:
    """IPv4 only, as it always was here (0.0.0.0 serves every interface)."""
    if ":" in host:
        raise SystemExit(f"[tango web] {host} is an IPv6 address; serve on an IPv4 one (0.0.0.0 for every interface).")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def child_command(sock: socket.socket, index: int, counts_fd: int, ready_fd: int, go_fd: int) -> list[str]:
    return [sys.executable, "-m", "tango_site.webserver", "--child", f"{sock.fileno()},{index},{counts_fd},{ready_fd},"
            f"{go_fd}"]


class SharedListener(socket.socket):
    """The parent's listening socket as a child holds it, taking a connection only when it is not the busiest child.

    Every child accepts on one socket, and the kernel hands a new connection to whichever child asks first. On two
    cores shared with Postgres and the clients, the child already running kept winning: a burst of new connections
    (50 users arriving at once) piled onto one process and stayed there, kept alive (bench/load.py: 35/17, then
    48/4), and its interpreter lock queued two thirds or more of the requests while the other process idled.

    Here each child publishes how many connections it holds (a shared array, one slot per child). A child that
    holds more than the least loaded one lets a pending connection wait for that one, briefly: after
    DEFER_SECONDS it takes it anyway, so a stuck or stopped child never holds new connections up for long. asyncio
    accepts one connection per wake-up here (backlog 1), so the counts are checked for each; and its listen(backlog)
    call does nothing, as on this shared socket it would cut the kernel's queue for every child."""

    DEFER_SECONDS = 0.05

    def setup(self, counts: memoryview, index: int, connections: set) -> None:
        self.counts, self.index, self.connections = counts, index, connections
        self.deferring_since = self.last_deferred = 0.0

    def publish(self) -> int:
        self.counts[self.index] = held = len(self.connections)
        return held

    def accept(self):
        held = self.publish()
        others = [count for i, count in enumerate(self.counts) if i != self.index]
        if others and held > min(others):
            now = time.monotonic()
            if now - self.last_deferred > 0.01:  # not this connection's wait: the last one went to another child
                self.deferring_since = now
            self.last_deferred = now
            if now - self.deferring_since < self.DEFER_SECONDS:
                time.sleep(0.001)  # the socket stays readable: without a pause this loop would spin
                raise BlockingIOError  # asyncio: nothing to accept after all
        conn = super().accept()
        self.counts[self.index] = held + 1
        return conn

    def listen(self, backlog: int = 0) -> None:
        pass


def serve_child(fd: int, index: int, counts_fd: int, ready_fd: int, go_fd: int) -> None:
    """One web process: uvicorn with httptools' parser on the inherited socket, until SIGTERM.

    It loads Django, says so on ready_fd, and starts accepting once the parent closes go_fd: every child has
    loaded by then, and none takes the connections that arrived meanwhile alone."""
    import mmap

    import uvicorn

    counts = memoryview(mmap.mmap(counts_fd, 0)).cast("i")
    listener = SharedListener(fileno=fd)

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            listener.setup(counts, index, self.server_state.connections)
            os.write(ready_fd, b"+")
            os.read(go_fd, 1)  # EOF once the parent releases every child
            await super().startup(sockets=sockets)

        async def on_tick(self, counter: int) -> bool:
            listener.publish()  # closed connections count down between accepts (a tick is 0.1 s)
            return await super().on_tick(counter)

    config = uvicorn.Config(
        "tango_site.asgi:application", http="httptools", loop="asyncio", ws="websockets-sansio", lifespan="off",
        access_log=False, proxy_headers=False, server_header=False, timeout_keep_alive=KEEPALIVE_SECONDS, backlog=1,
    )
    Server(config).run(sockets=[listener])


class WebServer:
    def __init__(self, host: str, port: int, workers: int):
        self.sock = listen(host, port)
        self.workers = workers
        self.children: list[subprocess.Popen] = []
        self.stopping = False
        self.ready = 0
        self.ready_r = self.go_w = -1

    def start(self) -> None:
        self.ready_r, ready_w = os.pipe()
        go_r, self.go_w = os.pipe()
        counts = os.memfd_create("tango-web-connections")  # one int per child: the connections it holds
        os.ftruncate(counts, 4 * self.workers)
        # Pooled database connections (why: TANGO_DB_POOL in settings.py); only here, as Celery's forks must not.
        env = {"TANGO_DB_POOL": "1", **os.environ}
        for index in range(self.workers):
            self.children.append(subprocess.Popen(
                child_command(self.sock, index, counts, ready_w, go_r), env=env,
                pass_fds=[self.sock.fileno(), counts, ready_w, go_r], preexec_fn=die_with_parent))
        for fd in (counts, ready_w, go_r):
            os.close(fd)

    def stop(self, *_) -> None:
        self.stopping = True

    def run(self) -> int:
        """Until a signal (0) or a child's death (1, with a message)."""
        while not self.stopping:
            for child in self.children:
                if child.poll() is not None:
                    print(
                        f"[tango web] A web server process (pid {child.pid}) stopped unexpectedly "
                        f"(exit code {child.returncode}); stopping the others.",
                        file=sys.stderr,
                        flush=True,
                    )
                    self.shutdown()
                    return 1
            self.release_when_ready(timeout=0.5)
        self.shutdown()
        return 0

    def release_when_ready(self, timeout: float) -> None:
        """Count the children that loaded; once all have, let them all accept (close go_fd). Else sleep."""
        if self.go_w < 0:
            time.sleep(timeout)
            return
        if select.select([self.ready_r], [], [], timeout)[0]:
            self.ready += len(os.read(self.ready_r, 64))
        if self.ready >= self.workers:
            os.close(self.go_w)
            os.close(self.ready_r)
            self.go_w = self.ready_r = -1

    def shutdown(self) -> None:
        if self.go_w >= 0:  # children still waiting to start: let them go, to see their SIGTERM
            os.close(self.go_w)
            self.go_w = -1
        for child in self.children:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for child in self.children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tango_site.webserver", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="web server processes (default: TANGO_WEB_WORKERS, else one per CPU up to 4 in team mode, 1 embedded)",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # a child, as the parent starts it
    args = parser.parse_args(argv)
    if args.child is not None:
        serve_child(*map(int, args.child.split(",")))
        return 0
    workers = args.workers or default_workers()
    server = WebServer(args.host, args.port, workers)
    signal.signal(signal.SIGTERM, server.stop)
    signal.signal(signal.SIGINT, server.stop)
    server.start()
    print(f"[tango web] {workers} uvicorn process(es) serving http://{args.host}:{args.port}/", flush=True)
    return server.run()


if __name__ == "__main__":
    sys.exit(main())
