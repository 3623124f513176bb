from django.core.management.base import BaseCommand

from recommender.commands import calibrate, calibrate_arguments


class Command(BaseCommand):
    help = "Benchmark a spread of candidates on this server with ONNX Runtime and store the records."

    def add_arguments(self, parser):
        calibrate_arguments(parser)

    def handle(self, *args, **options):
        calibrate(self, **options)
