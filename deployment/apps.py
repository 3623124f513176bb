from django.apps import AppConfig


class DeploymentConfig(AppConfig):
    name = "deployment"

    def ready(self):
        from projects.commands import Subcommand, setup_step_register, subcommand_register
        from projects.jobs.registry import Stage, stage_register
        from tango_common.options import Option

        from .cli import add_engines_arguments

        for stage in (
            Stage(key="convert", label="Optimize & convert", order=30, requires=("train",),
                  runner="deployment.services.convert_stage",
                  description="Export for the target engine and check its outputs against the project's model "
                              "(the trained PyTorch one, or the imported one).",
                  result_template="deployment/results/_convert.html"),
            Stage(key="benchmark", label="Benchmark", order=40, requires=("convert",),
                  runner="deployment.services.benchmark_stage",
                  description="Measure latency and accuracy of every artifact.",
                  result_template="deployment/results/_benchmark.html"),
            Stage(key="compare", label="Compare engines (Table 2)", order=45, requires=("convert",),
                  runner="deployment.optimize.compare_stage", optional=True,
                  description="The project's model against every engine × precision that runs here, at two input "
                              "sizes: speed-up over it and accuracy delta, each artifact through the accuracy guard.",
                  result_template="deployment/results/_compare.html"),
            Stage(key="package", label="Package", order=50, requires=("benchmark",),
                  runner="deployment.packaging.package_stage",
                  description="Bundle the model for the device's tier: infer.py, smoke test, server, manifests.",
                  result_template="deployment/results/_package.html"),
            Stage(key="tvm_tune", label="Tune (TVM)", order=35, requires=("convert",), optional=True,
                  options=(Option("trials", "int", default=64, low=1, high=5000, label="Trials",
                                  help="Measured candidate schedules in all, spread over the model's operators."),
                           Option("seconds", "float", default=600.0, low=5, high=14400, label="Time budget (s)",
                                  help="The search stops when this is spent.")),
                  runner="deployment.tuning.tune_stage",
                  description="Search faster TVM schedules for this server's CPU (MetaSchedule, trial and time "
                              "budget); the untuned and tuned builds' latency beside the model's baseline.",
                  result_template="deployment/results/_tune.html"),
        ):
            stage_register(stage)
        subcommand_register(Subcommand(
            name="engines", help="List the inference engines this server converts for; install one's environment.",
            handler="deployment.cli.engines", arguments=add_engines_arguments))
        setup_step_register("deployment.cli.engines_setup_line")
