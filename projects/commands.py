"""What `manage.py tango` runs besides its own subcommands (setup, serve, demo): apps add theirs here, from their
AppConfig.ready(), and the command never names an app.

- subcommand_register(Subcommand(...)): `tango NAME [args]` calls handler(command, **options), where command is
  the running BaseCommand (write with command.stdout, command.style) and options are the parsed arguments.
- setup_step_register(dotted): `tango setup` calls step() after migrating; the line it returns is printed.
- demo_register(task, dotted): `tango demo --task TASK` and the page's demo button call create(user=...) -> Project.
Handlers are dotted paths, imported only when run: the web process loads none of them.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils.module_loading import import_string

BUILT_IN = ("setup", "serve", "demo")


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    handler: str  # dotted path of handler(command, **options)
    arguments: Callable = field(default=lambda parser: None, compare=False)  # adds the subcommand's arguments

    def run(self, command, **options) -> None:
        import_string(self.handler)(command, **options)


_subcommands: dict[str, Subcommand] = {}
_setup_steps: list[str] = []
_demos: dict[str, str] = {}


def subcommand_register(subcommand: Subcommand) -> None:
    if subcommand.name in BUILT_IN:
        raise ValueError(f"`tango {subcommand.name}` is built in.")
    _subcommands[subcommand.name] = subcommand


def subcommands() -> list[Subcommand]:
    return sorted(_subcommands.values(), key=lambda s: s.name)


def setup_step_register(dotted: str) -> None:
    if dotted not in _setup_steps:
        _setup_steps.append(dotted)


def setup_steps() -> list[Callable[[], str]]:
    return [import_string(dotted) for dotted in _setup_steps]


def demo_register(task: str, dotted: str) -> None:
    _demos[task] = dotted


def demo_tasks() -> list[str]:
    return sorted(_demos)


def demo_creator(task: str) -> Callable:
    """create(user=...) -> Project of the demo for the task; KeyError when no app offers one."""
    return import_string(_demos[task])
