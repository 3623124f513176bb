from django.apps import AppConfig


class DeploymentConfig(AppConfig):
    name = "deployment"

    def ready(self):
        from projects.jobs.registry import Stage, stage_register

        for stage in (
            Stage(key="convert", label="Optimize & convert", order=30, requires=("train",),
                  runner="deployment.services.convert_stage",
                  description="Export for the target engine and check the outputs against PyTorch.",
                  result_template="deployment/results/_convert.html"),
            Stage(key="benchmark", label="Benchmark", order=40, requires=("convert",),
                  runner="deployment.services.benchmark_stage",
                  description="Measure latency and accuracy of every artifact.",
                  result_template="deployment/results/_benchmark.html"),
            Stage(key="compare", label="Compare engines (Table 2)", order=45, requires=("convert",),
                  runner="deployment.optimize.compare_stage", optional=True,
                  description="PyTorch eager against every engine × precision that runs here, at two input "
                              "sizes: speed-up and accuracy delta, each artifact through the accuracy guard.",
                  result_template="deployment/results/_compare.html"),
            Stage(key="package", label="Package", order=50, requires=("benchmark",),
                  runner="deployment.packaging.package_stage",
                  description="Bundle the model for the device's tier: infer.py, smoke test, server, manifests.",
                  result_template="deployment/results/_package.html"),
        ):
            stage_register(stage)
