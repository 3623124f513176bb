"""The catalog's PC (Intel Core i7-12700 beside its RTX 3060) runs OpenVINO on its Intel CPU: databases seeded
by 0002 before it listed the engine get it here."""

from django.db import migrations


def add_openvino(apps, schema_editor):
    pc = apps.get_model("recommender", "Device").objects.filter(name="PC").first()
    if pc is not None and "openvino" not in pc.engines:
        pc.engines = [*pc.engines, "openvino"]
        pc.save(update_fields=["engines"])


def remove_openvino(apps, schema_editor):
    pc = apps.get_model("recommender", "Device").objects.filter(name="PC").first()
    if pc is not None and "openvino" in pc.engines:
        pc.engines = [e for e in pc.engines if e != "openvino"]
        pc.save(update_fields=["engines"])


class Migration(migrations.Migration):
    dependencies = [("recommender", "0004_seed_table1")]

    operations = [migrations.RunPython(add_openvino, remove_openvino)]
