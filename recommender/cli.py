"""`manage.py tango calibrate` (registered in RecommenderConfig.ready) and `manage.py calibrate` run this: the same
host_calibrate the device page's calibration job runs."""

from .calibration import host_calibrate


def add_calibrate_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true", help="Three tiny models (seconds, for a smoke test).")


def calibrate(command, *, quick=False, **_) -> None:
    records = host_calibrate(report=lambda line, progress=None: command.stdout.write(line), quick=quick)
    command.stdout.write(command.style.SUCCESS(f"Stored {len(records)} records for {records[0].device.name}."))
