"""Seed the paper's models on the ten devices of the TANGO paper's Table 1 (copied cell for cell).

Literal here, not imported, so later edits to the app cannot change what this migration wrote. Keyed by the
names the catalog seed gave those devices; from then on the models live on the row, whatever it is renamed to.
"""

from django.db import migrations

TABLE1 = {
    # device: (object detection, image classification)
    "Cloud": ("YOLOv7-E6E", "ResNet-203"),
    "K8S_PC": ("YOLOv7-W6", "ResNet-152"),
    "K8S_Jetson_Nano": ("YOLOv7-tiny", "ResNet-34"),
    "PC_Server": ("YOLOv7-E6", "ResNet-152"),
    "PC": ("YOLOv7-W6", "ResNet-152"),
    "Jetson_AGX_Orin": ("YOLOv7-W6", "ResNet-101"),
    "Jetson_AGX_Xavier": ("YOLOv7-X", "ResNet-50"),
    "Jetson_Nano": ("YOLOv7-tiny", "ResNet-34"),
    "Galaxy_S22": ("YOLOv7-tiny", "ResNet-34"),
    "Odroid_N2": ("YOLOv7-tiny", "ResNet-34"),
}


def seed(apps, schema_editor):
    Device = apps.get_model("recommender", "Device")
    for name, (detection, classification) in TABLE1.items():
        Device.objects.filter(name=name).update(paper_detection_model=detection,
                                                paper_classification_model=classification)


def unseed(apps, schema_editor):
    Device = apps.get_model("recommender", "Device")
    Device.objects.filter(name__in=TABLE1).update(paper_detection_model="", paper_classification_model="")


class Migration(migrations.Migration):
    dependencies = [("recommender", "0003_paper_models_and_benchmark_records")]

    operations = [migrations.RunPython(seed, unseed)]
