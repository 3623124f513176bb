from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    name = "recommender"

    def ready(self):
        from projects.commands import Subcommand, setup_step_register, subcommand_register
        from projects.devices import DeviceCatalog, device_catalog_register
        from projects.jobs.registry import Stage, stage_register

        from .cli import add_calibrate_arguments
        from .selectors import device_catalog, device_catalog_grouped
        from .services import benchmark_measured, wizard_pick_preview

        stage_register(Stage(
            key="recommend", label="Recommend", order=10, runner="recommender.services.recommend_stage",
            description="Pick a model family and complexity that fit the target device.",
            result_template="recommender/results/_recommend.html", preview="recommender.services.recommend_preview",
        ))
        stage_register(Stage(
            key="calibrate", label="Calibrate this server", catalog=True, order=900,
            runner="recommender.calibration.calibrate_stage", page="recommender:host_measurements",
            page_label="This server", result_template="recommender/results/_calibrate.html",
            description="Time a spread of candidates with ONNX Runtime on this server and store the records.",
        ))
        device_catalog_register(DeviceCatalog(ordered=device_catalog, card_template="recommender/_device_specs.html",
                                              pick_preview=wizard_pick_preview, grouped=device_catalog_grouped,
                                              record_benchmark=benchmark_measured))
        setup_step_register("recommender.services.host_device_setup")
        subcommand_register(Subcommand(
            name="calibrate", help="Benchmark a spread of candidates on this server and store the records.",
            handler="recommender.cli.calibrate", arguments=add_calibrate_arguments))
