from django.apps import AppConfig


class VisualizerConfig(AppConfig):
    name = "visualizer"

    def ready(self):
        from projects.commands import setup_step_register
        from projects.jobs.registry import Stage, stage_register
        from training.hooks import network_source_register, trained_network_register

        stage_register(Stage(
            key="network", label="Network", order=18, requires=("recommend",), optional=True,
            runner="visualizer.services.network_stage", result_template="visualizer/results/_network.html",
            page="visualizer:editor", page_label="Open the network editor",
            description="See the network as a graph, fold it into blocks and edit it with live costs on the "
                        "target device (open the editor); this check confirms the version the train stage trains.",
        ))
        network_source_register("visualizer.services.training_network")
        trained_network_register("visualizer.services.trained_network")
        setup_step_register("visualizer.assets.setup_step")
