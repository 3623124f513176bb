"""Writes to the device catalog."""

from django.db import transaction

from .host import HOST_DEVICE_NAME, read_host_specs
from .models import Device


@transaction.atomic
def host_device_refresh() -> Device:
    """Create or update the This_Server device from the machine's current specs.

    is_active is left as an admin set it: a refresh re-reads hardware, it does not re-enable a hidden target.
    """
    specs = read_host_specs()
    device = Device.objects.filter(name=HOST_DEVICE_NAME).first() or Device(name=HOST_DEVICE_NAME)
    for field, value in specs.items():
        setattr(device, field, value)
    device.full_clean()  # the engines read here must pass the same rule an admin edit does
    device.save()
    return device
