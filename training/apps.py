from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"

    def ready(self):
        from projects.jobs.registry import Queue, Stage, stage_register

        stage_register(Stage(
            key="train", label="Train", order=20, requires=("recommend",), queue=Queue.GPU,
            runner="training.services.train_stage", description="Train the recommended model on the dataset.",
            result_template="training/results/_train.html",
        ))
