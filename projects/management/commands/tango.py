"""`manage.py tango setup|serve|demo|…`: the embedded portal's own commands, and those apps add.

setup  migrate, run the apps' setup steps (the recommender reads this server's specs into the catalog), create
       the first admin and a demo team
serve  run the web server (tango_site.webserver: uvicorn processes) and a Celery worker; a worker that dies is
       started again (projects.supervisor), and in embedded mode the reaper runs on the supervisor's tick
demo   build a demo project (--task: the demos apps offer) and run its whole pipeline here, printing the live log
…      subcommands apps register (projects.commands), e.g. `tango calibrate`
"""

import os
import secrets
import signal
import sys
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from projects import commands
from projects.demo import demo_run_here
from projects.models import Role, Team
from projects.services import membership_set
from projects.supervisor import Child, Supervisor

DEMO_TEAM = "Demo team"


class Command(BaseCommand):
    help = "Set up, serve, or run the demo of the TANGO portal."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("setup", help="Migrate, refresh the host device, create the admin and the demo team.")
        serve = sub.add_parser("serve", help="Serve the portal with a worker.")
        serve.add_argument("--host", default=os.environ.get("TANGO_HOST", "127.0.0.1"))
        serve.add_argument("--port", type=int, default=int(os.environ.get("TANGO_PORT", "8000")))
        serve.add_argument("--no-worker", action="store_true", help="Serve only; workers run elsewhere.")
        demo = sub.add_parser("demo", help="Create a demo project and run its pipeline here.")
        demo.add_argument("--user", default="admin", help="Owner of the demo project.")
        tasks = commands.demo_tasks()
        demo.add_argument("--task", choices=tasks, default=tasks[0] if tasks else None, help="Which demo to run.")
        for extra in commands.subcommands():
            extra.arguments(sub.add_parser(extra.name, help=extra.help))

    def handle(self, *args, action, **options):
        if action in commands.BUILT_IN:
            getattr(self, f"do_{action}")(**options)
        else:
            next(s for s in commands.subcommands() if s.name == action).run(self, **options)

    # --- setup ---

    def do_setup(self, **_):
        Path(settings.DATA_DIR).mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        for step in commands.setup_steps():
            self.stdout.write(step())
        user, password = _first_admin()
        team, _ = Team.objects.get_or_create(name=DEMO_TEAM)
        membership_set(team=team, user=user, role=Role.OWNER)
        self.stdout.write(self.style.SUCCESS("\nTANGO is set up."))
        # The password is shown once, when it is made: compose runs setup on every start, and container logs
        # are kept and shared far more widely than the data folder.
        if password is None:
            self.stdout.write(f"  Admin '{user.username}' already exists; its password is not shown again.\n")
        elif password == _FROM_ENV:
            self.stdout.write(f"  Log in as '{user.username}' with the password in TANGO_ADMIN_PASSWORD.\n")
        else:
            self.stdout.write(f"  Log in as '{user.username}' with password {password}")
            self.stdout.write(f"  (kept, readable by this account only, in {_password_file()})\n")

    # --- serve ---

    def do_serve(self, host, port, no_worker, **_):
        python = sys.executable
        children = []
        if not no_worker:
            worker = [python, "-m", "celery", "-A", "tango_site", "worker", "-Q", "cpu,gpu", "--concurrency", "2",
                      "--loglevel", "INFO"]
            if settings.REDIS_URL:  # team mode: beat runs the reaper; embedded, the supervisor does (see below)
                worker += ["-B", "--schedule", str(Path(settings.DATA_DIR) / "celerybeat-schedule")]
            children.append(Child("worker", worker, restart=True, own_group=True))
        children.append(Child("web server", [python, "-m", "tango_site.webserver", "--host", host, "--port",
                                             str(port)], restart=False))

        def echo(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        # Embedded mode has no beat (it would die with the worker it runs in): the supervisor runs the reaper.
        supervisor = Supervisor(children, echo=echo, tick=None if settings.REDIS_URL else _reap,
                                tick_seconds=settings.TANGO_REAP_INTERVAL_SECONDS)
        signal.signal(signal.SIGINT, supervisor.stop)
        signal.signal(signal.SIGTERM, supervisor.stop)
        supervisor.start()
        self.stdout.write(self.style.SUCCESS(f"TANGO is serving on http://{host}:{port}/ (Ctrl-C stops it)"))
        failure = supervisor.run()
        if failure:
            raise CommandError(failure)

    # --- demo ---

    def do_demo(self, user, task, **_):
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"No user {user!r}; run `manage.py tango setup` first.")
        if task is None:
            raise CommandError("No app offers a demo.")
        project = commands.demo_creator(task)(user=owner)
        self.stdout.write(f"Demo project '{project.name}' (#{project.pk}) created; running its pipeline here.")
        ok = demo_run_here(project=project, echo=self.stdout.write)
        if not ok:
            raise CommandError("The demo pipeline did not finish; its log is above.")
        self.stdout.write(self.style.SUCCESS(f"Demo done: open /projects/{project.pk}/ to see it."))


def _reap() -> None:
    from projects.jobs.reaper import jobs_reap_stale

    jobs_reap_stale()
    close_old_connections()


def _password_file() -> Path:
    return Path(settings.DATA_DIR) / "initial-admin-password.txt"


_FROM_ENV = object()


def _first_admin():
    """The admin account made on first setup: (user, its new password), or (user, None) when it existed already.

    A generated password is kept in the data folder for the operator, in a file created 0600 (never readable by
    others, not even between a write and a chmod); one the operator set in TANGO_ADMIN_PASSWORD is not stored."""
    User = get_user_model()
    username = os.environ.get("TANGO_ADMIN_USER", "admin")
    user = User.objects.filter(username=username).first()
    if user is not None:
        return user, None
    given = os.environ.get("TANGO_ADMIN_PASSWORD")
    password = given or secrets.token_urlsafe(12)
    user = User.objects.create_superuser(username=username, password=password, email="")
    if given:
        return user, _FROM_ENV
    _write_private(_password_file(), password + "\n")
    return user, password


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(fd, 0o600)  # a file left by an earlier install keeps its old mode through O_CREAT
        out.write(text)
