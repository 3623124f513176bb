from django.core.management.base import BaseCommand

from recommender.cli import add_calibrate_arguments, calibrate


class Command(BaseCommand):
    help = "Benchmark a spread of candidates on this server with ONNX Runtime and store the records."

    def add_arguments(self, parser):
        add_calibrate_arguments(parser)

    def handle(self, *args, **options):
        calibrate(self, **options)
