from django.core.exceptions import ValidationError
from django.db import models

from tango_common.engines import ENGINE_CHOICES, Accelerator, engine_problem


class Tier(models.TextChoices):
    CLOUD = "cloud", "Cloud"
    K8S = "k8s", "K8S"
    PC = "pc", "PC"
    ON_DEVICE = "on_device", "On-device"


class Device(models.Model):
    """A deployment target in the catalog. Figures come from public datasheets; the latency model reads them."""

    name = models.CharField(max_length=60, unique=True, help_text="Catalog key, e.g. Jetson_Nano.")
    tier = models.CharField(max_length=10, choices=Tier.choices)
    vendor = models.CharField(max_length=60, blank=True)
    cpu_arch = models.CharField(max_length=20, help_text="x86_64, aarch64, …")
    cpu_name = models.CharField(max_length=100, blank=True)
    cpu_cores = models.PositiveIntegerField(default=1)
    accelerator_kind = models.CharField(max_length=20, choices=Accelerator.CHOICES, default=Accelerator.NONE)
    accelerator_name = models.CharField(max_length=100, blank=True)
    peak_fp32_gflops = models.FloatField(help_text="Peak FP32 throughput of the fastest compute unit, GFLOP/s.")
    peak_fp16_gflops = models.FloatField(null=True, blank=True)
    peak_int8_gops = models.FloatField(null=True, blank=True)
    memory_bandwidth_gbps = models.FloatField(help_text="Memory bandwidth, GB/s.")
    memory_mb = models.PositiveIntegerField(help_text="Memory available to the model, MiB.")
    os = models.CharField(max_length=100)
    engines = models.JSONField(default=list, help_text="Engine keys the device runs.")
    default_latency_budget_ms = models.FloatField(default=100.0)
    is_host = models.BooleanField(default=False, help_text="The server the portal itself runs on.")
    is_active = models.BooleanField(default=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["tier", "name"]

    def __str__(self):
        return self.name

    def clean(self):
        known = dict(ENGINE_CHOICES)
        problems = []
        if not self.engines:
            problems.append("List at least one engine the device runs.")
        for key in self.engines or []:
            if key not in known:
                problems.append(f"Unknown engine {key!r}.")
            elif problem := engine_problem(key, self.accelerator_kind):
                problems.append(problem)
        if problems:
            raise ValidationError({"engines": problems})

    def engine_labels(self) -> list[str]:
        known = dict(ENGINE_CHOICES)
        return [known.get(k, k) for k in self.engines]
