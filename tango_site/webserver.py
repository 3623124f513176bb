"""The portal's web server: several daphne processes accepting on one listening socket.

    python -m tango_site.webserver [--host 127.0.0.1] [--port 8000] [--workers N]

One daphne process runs every sync Django view on a thread pool under one interpreter lock, so it serves at most
one core's worth of Python however many the host has: under 50 users (bench/load.py) the requests queued behind
each other and the slowest pages took seconds. Here the parent binds the socket once and starts N daphne children
that all accept on it (daphne's `fd:` endpoint); the kernel hands each connection to one of them.

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
import signal
import socket
import subprocess
import sys
import time

from tango_common.processes import die_with_parent
from tango_site.env import env_int

STOP_SECONDS = 10.0  # after SIGTERM, what a child gets to finish its responses before SIGKILL


def default_workers() -> int:
    team_mode = bool(os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL"))
    return env_int("TANGO_WEB_WORKERS", min(os.cpu_count() or 1, 4) if team_mode else 1, minimum=1)


def listen(host: str, port: int) -> socket.socket:
    """IPv4 only: daphne adopts an inherited socket as AF_INET (its `fd:` endpoint cannot say otherwise)."""
    if ":" in host:
        raise SystemExit(f"[tango web] {host} is an IPv6 address; serve on an IPv4 one (0.0.0.0 for every interface).")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def daphne_command(sock: socket.socket) -> list[str]:
    return [sys.executable, "-m", "daphne", "--fd", str(sock.fileno()), "tango_site.asgi:application"]


class WebServer:
    def __init__(self, host: str, port: int, workers: int):
        self.sock = listen(host, port)
        self.workers = workers
        self.children: list[subprocess.Popen] = []
        self.stopping = False

    def start(self) -> None:
        command = daphne_command(self.sock)
        # Pooled database connections (why: TANGO_DB_POOL in settings.py); only here, as Celery's forks must not.
        env = {"TANGO_DB_POOL": "1", **os.environ}
        for _ in range(self.workers):
            self.children.append(
                subprocess.Popen(command, env=env, pass_fds=[self.sock.fileno()], preexec_fn=die_with_parent)
            )

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
            time.sleep(0.5)
        self.shutdown()
        return 0

    def shutdown(self) -> None:
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
        help="daphne processes (default: TANGO_WEB_WORKERS, else one per CPU up to 4 in team mode, 1 embedded)",
    )
    args = parser.parse_args(argv)
    workers = args.workers or default_workers()
    server = WebServer(args.host, args.port, workers)
    signal.signal(signal.SIGTERM, server.stop)
    signal.signal(signal.SIGINT, server.stop)
    server.start()
    print(f"[tango web] {workers} daphne process(es) serving http://{args.host}:{args.port}/", flush=True)
    return server.run()


if __name__ == "__main__":
    sys.exit(main())
