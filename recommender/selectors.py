"""Reads of the device catalog that the pages share."""

from .models import Device, Tier


def device_catalog(devices=None) -> list:
    """Active devices in the design's tier order (Cloud, K8S, PC, On-device), by name within a tier."""
    order = {tier: i for i, tier in enumerate(Tier.values)}
    devices = Device.objects.filter(is_active=True) if devices is None else devices
    return sorted(devices, key=lambda d: (order.get(d.tier, len(order)), d.name))
