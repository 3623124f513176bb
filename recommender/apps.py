from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    name = "recommender"

    def ready(self):
        from projects.commands import setup_step_register
        from projects.devices import DeviceCatalog, device_catalog_register
        from projects.jobs.registry import Stage, stage_register

        from .selectors import device_catalog

        stage_register(Stage(
            key="recommend", label="Recommend", order=10, runner="recommender.services.recommend_stage",
            description="Pick a model family and complexity that fit the target device.",
            result_template="recommender/results/_recommend.html", preview="recommender.services.recommend_preview",
        ))
        device_catalog_register(DeviceCatalog(ordered=device_catalog, card_template="recommender/_device_specs.html"))
        setup_step_register("recommender.services.host_device_setup")
