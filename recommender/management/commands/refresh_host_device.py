from django.core.management.base import BaseCommand

from recommender.services import host_device_refresh


class Command(BaseCommand):
    help = "Re-read this server's hardware into the catalog's This_Server device (after a GPU or RAM change)."

    def handle(self, *args, **options):
        device = host_device_refresh()
        accelerator = device.accelerator_name or "no accelerator"
        self.stdout.write(
            self.style.SUCCESS(
                f"{device.name}: {device.cpu_name} ({device.cpu_cores} CPUs), {accelerator}, "
                f"{device.memory_mb} MiB, engines {', '.join(device.engines)}."
            )
        )
