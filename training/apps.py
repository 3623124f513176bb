from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"

    def ready(self):
        from projects.commands import demo_register
        from projects.jobs.registry import Queue, Stage, stage_register

        from .engine.options import HPO_OPTIONS, NAS_OPTIONS, TRAIN_OPTIONS

        stage_register(Stage(
            key="train", label="Train", order=20, requires=("recommend",), queue=Queue.GPU,
            runner="training.services.train_stage", description="Train the recommended model on the dataset.",
            preview="training.services.train_preview",  # how long it will take, once Recommend has timed it
            result_template="training/results/_train.html", options=TRAIN_OPTIONS,
            scores=(("best_top1", "top-1"), ("map50", "mAP50")),  # classification's, detection's
        ))
        stage_register(Stage(
            key="nas", label="Supernet search", order=14, queue=Queue.GPU, optional=True,
            runner="training.automl.nas_stage", result_template="training/results/_nas.html", options=NAS_OPTIONS,
            description="Train one elastic supernet, then search a subnet for every catalog device's latency "
                        "budget (optional: the chosen subnet then trains like any model).",
        ))
        stage_register(Stage(
            key="hpo", label="Hyperparameter search", order=17, requires=("recommend",), queue=Queue.GPU,
            optional=True, runner="training.automl.hpo_stage", result_template="training/results/_hpo.html",
            options=HPO_OPTIONS,
            description="Search learning rate, weight decay, batch size, optimiser and label smoothing with "
                        "Optuna, trials spread over the workers (optional: adopt the best, then train).",
        ))
        demo_register("detection", "training.demo.detection_demo_create")
