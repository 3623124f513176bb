from django.core.exceptions import ValidationError
from django.db import models

from tango_common.engines import ENGINE_CHOICES, Accelerator, engine_problem

from .engine.table1 import PAPER_CLASSIFICATION_MODELS, PAPER_DETECTION_MODELS

PAPER_DETECTION_CHOICES = [(label, label) for label in PAPER_DETECTION_MODELS]
PAPER_CLASSIFICATION_CHOICES = [(label, label) for label in PAPER_CLASSIFICATION_MODELS]


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
    # The TANGO paper's Table 1 on the device's own row, so a rename keeps it. Blank: the device is not in the
    # paper, and the paper rule borrows the models of the nearest paper device of its tier. db_default: rows that
    # older migrations (the catalog seed) write leave them empty.
    paper_detection_model = models.CharField(
        max_length=20, blank=True, default="", db_default="", choices=PAPER_DETECTION_CHOICES,
        help_text="Object detection model the TANGO paper's Table 1 gives this device (blank: not in the paper).")
    paper_classification_model = models.CharField(
        max_length=20, blank=True, default="", db_default="", choices=PAPER_CLASSIFICATION_CHOICES,
        help_text="Image classification model the TANGO paper's Table 1 gives this device (blank: not in the paper).")

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
            elif problem := engine_problem(key, self.accelerator_kind, self.cpu_name):
                problems.append(problem)
        if problems:
            raise ValidationError({"engines": problems})

    def engine_labels(self) -> list[str]:
        known = dict(ENGINE_CHOICES)
        return [known.get(k, k) for k in self.engines]


class RecordSource(models.TextChoices):
    CALIBRATE = "calibrate", "Calibration (tango calibrate)"
    BENCHMARK = "benchmark", "Benchmark stage"
    BENCH = "bench", "Benchmark script"


class ArchitectureCost(models.Model):
    """Costs of one network at one input size, measured from the model itself; the cache the recommender reads.

    Keyed by the architecture signature (a hash of the layer listing and input size), so an edited network gets
    its own row and two names for one network share one.
    """

    signature = models.CharField(max_length=40, unique=True)
    model_name = models.CharField(max_length=60)
    input_size = models.PositiveIntegerField()
    num_classes = models.PositiveIntegerField()
    costs = models.JSONField(help_text="recommender.engine.costs.Costs as a dict.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["model_name", "input_size", "num_classes"])]

    def __str__(self):
        return f"{self.model_name} @ {self.input_size} px"


class BenchmarkRecord(models.Model):
    """One measured run of a network on a device: what the latency and memory models are fitted to.

    Written by calibrate (this server measuring itself, shared by every team: team is empty) and by deployment's
    benchmark stage (the team's own, with the accuracy it measured).
    """

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="benchmark_records")
    engine = models.CharField(max_length=20)
    precision = models.CharField(max_length=4)
    architecture = models.ForeignKey(ArchitectureCost, on_delete=models.PROTECT, related_name="records")
    input_size = models.PositiveIntegerField()
    batch_size = models.PositiveIntegerField(default=1)
    latency_ms = models.FloatField()
    memory_mb = models.FloatField(null=True, blank=True)
    accuracy = models.FloatField(null=True, blank=True, help_text="Percent (top-1 or mAP50-95) on the project's data.")
    source = models.CharField(max_length=10, choices=RecordSource.choices)
    team = models.ForeignKey("projects.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("projects.Project", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    details = models.JSONField(default=dict, blank=True, help_text="How it was measured (threads, runs, wall time).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["device", "engine", "precision"])]

    def __str__(self):
        return f"{self.architecture} on {self.device} ({self.engine}, {self.precision}): {self.latency_ms:.2f} ms"
