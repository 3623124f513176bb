from django.conf import settings
from django.db import models


class Artifact(models.Model):
    """A model file the pipeline made. It is only ever marked verified after it ran and matched its reference."""

    class Kind(models.TextChoices):
        PYTORCH = "pytorch", "PyTorch weights"
        ONNX = "onnx", "ONNX model"
        PT_EXPORT = "pt_export", "PyTorch export (TorchScript / ExportedProgram)"
        OPENVINO = "openvino", "OpenVINO IR"
        TENSORRT = "tensorrt", "TensorRT engine or build kit"
        TVM = "tvm", "TVM module"
        RKNN = "rknn", "RKNN model"
        TFLITE = "tflite", "TFLite model"
        BUNDLE = "bundle", "Deployment bundle"

    class Status(models.TextChoices):
        VERIFIED = "verified", "Verified"
        FAILED = "failed", "Failed"
        # Failed a check, then accepted by a user with a recorded reason (checks["override"], the audit log).
        ACCEPTED = "accepted", "Accepted (override)"

    class Runs(models.TextChoices):
        """Where the model runs. The stages used to tell a build kit from a device-only file by the words of a
        status sentence kept in `checks`."""

        HERE = "here", "Runs here"
        ON_DEVICE = "on_device", "Runs on the device"  # RKNN's .rknn, TVM's aarch64 library: built and checked here
        BUILDS_ON_DEVICE = "builds_on_device", "Builds on the device"  # a TensorRT kit: the engine is made there

        @classmethod
        def of(cls, *, runs_here: bool, builds_on_device: bool) -> "Artifact.Runs":
            if builds_on_device:
                return cls.BUILDS_ON_DEVICE
            return cls.HERE if runs_here else cls.ON_DEVICE

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="artifacts")
    job = models.ForeignKey("projects.Job", on_delete=models.CASCADE, related_name="artifacts")
    training_run = models.ForeignKey("training.TrainingRun", null=True, on_delete=models.SET_NULL,
                                     related_name="artifacts")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    engine = models.CharField(max_length=20)
    precision = models.CharField(max_length=4, default="fp32")  # fp32, fp16, bf16, int8
    path = models.CharField(max_length=255, help_text="Relative to MEDIA_ROOT.")
    size_bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices)
    runs = models.CharField(max_length=16, choices=Runs.choices, default=Runs.HERE,
                            help_text="Where the model runs: on this server, only on the device, or built there.")
    checks = models.JSONField(default=dict, help_text="How it was verified: parity with PyTorch, bundle run…")
    benchmark = models.JSONField(default=dict, help_text="Latency and accuracy measured by the benchmark stage.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def builds_on_device(self) -> bool:
        """A build kit: the engine is made on the device (the convert card says so)."""
        return self.runs == self.Runs.BUILDS_ON_DEVICE

    @property
    def file_name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


# The artifact kind a converted model of each engine is stored as (deployment.engine.converters' registry).
KIND_OF_ENGINE = {"pytorch": Artifact.Kind.PT_EXPORT, "onnxruntime": Artifact.Kind.ONNX,
                  "openvino": Artifact.Kind.OPENVINO, "tensorrt": Artifact.Kind.TENSORRT, "tvm": Artifact.Kind.TVM,
                  "rknn": Artifact.Kind.RKNN, "tflite": Artifact.Kind.TFLITE}


class Trial(models.Model):
    """Try it: one image a member uploaded, run through one artifact by a worker, with what the model answered."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="trials")
    artifact = models.ForeignKey(Artifact, on_delete=models.CASCADE, related_name="trials")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    image_path = models.CharField(max_length=255, help_text="The uploaded image, relative to MEDIA_ROOT.")
    image_name = models.CharField(max_length=255, help_text="The file name it was uploaded under.")
    annotated_path = models.CharField(max_length=255, blank=True, help_text="Detection: the image with its boxes.")
    top_k = models.PositiveSmallIntegerField(default=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    result = models.JSONField(default=dict, blank=True, help_text="Top-k labels, or boxes, and the latency.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Trial #{self.pk} of {self.artifact}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)
