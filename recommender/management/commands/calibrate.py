from django.core.management.base import BaseCommand

from recommender.calibration import QUICK_SPREAD, host_calibrate


class Command(BaseCommand):
    help = "Benchmark a spread of candidates on this server with ONNX Runtime and store the records."

    def add_arguments(self, parser):
        parser.add_argument("--quick", action="store_true", help="Three tiny models (seconds, for a smoke test).")

    def handle(self, *args, quick=False, **options):
        records = host_calibrate(report=lambda line, progress=None: self.stdout.write(line),
                                 spread=QUICK_SPREAD if quick else None)
        self.stdout.write(self.style.SUCCESS(f"Stored {len(records)} records for {records[0].device.name}."))
