"""`manage.py tango calibrate`: this server measures itself (registered with tango's subcommands in apps.py)."""

from .calibration import QUICK_SPREAD, host_calibrate


def calibrate_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true", help="Three tiny models (seconds, for a smoke test).")


def calibrate(command, *, quick: bool = False, **_) -> None:
    records = host_calibrate(report=lambda line, progress=None: command.stdout.write(line),
                             spread=QUICK_SPREAD if quick else None)
    command.stdout.write(command.style.SUCCESS(
        f"Stored {len(records)} records for {records[0].device.name}; its latency model is refitted with them."))
