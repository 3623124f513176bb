"""The options the training app's stages take, declared once (tango_common.options): the train stage's for each
task, the hyperparameter search's and the supernet search's. The stages register them (training/apps.py), the API
and the pages check a project's options against them, and the stages check them again before they run.

No option names a file: starting weights come only from a file the team uploaded (the project's weights) or from
a search job of the same project, both resolved on the server.

Imports no torch: the web process reads these declarations.
"""

from tango_common.options import Option

CLASSIFICATION, DETECTION = "classification", "detection"
AUGMENTATIONS = ("none", "light", "standard", "strong")

# Defaults of None are derived from the dataset when the run starts (training.engine.defaults).
TRAIN_OPTIONS: tuple[Option, ...] = (
    Option("epochs", "int", None, 1, 500, label="Epochs",
           help="Passes over the training images. Empty: chosen from the dataset's size.", advanced=True),
    Option("batch_size", "int", None, 2, 1024, label="Batch size", tasks=(CLASSIFICATION,),
           help="Images per optimizer step. Empty: chosen from the dataset's size.", advanced=True),
    Option("lr", "float", None, 1e-6, 5.0, label="Learning rate", tasks=(CLASSIFICATION,),
           help="Peak learning rate, reached after the warm-up. Empty: scaled to the batch size.", advanced=True),
    Option("optimizer", "choice", "sgd", choices=("sgd", "adamw"), label="Optimiser", tasks=(CLASSIFICATION,),
           advanced=True),
    Option("augmentation", "choice", None, choices=AUGMENTATIONS, label="Augmentation", tasks=(CLASSIFICATION,),
           help="How much the training images are varied (crops, flips, colour). Empty: standard for photos, "
                "light for small grayscale images such as digits.", advanced=True),
    Option("patience", "int", 0, 0, 500, label="Early stopping (epochs)",
           help="Stop after this many epochs without a better validation accuracy; 0 never stops early.",
           advanced=True),
    Option("min_accuracy", "float", None, 0.0, 1.0, label="Minimum validation accuracy (detection: mAP50)",
           help="A run below this (a fraction, 0.8 = 80%) ends as failed on quality and goes no further. Empty: it "
                "must clearly beat chance.", advanced=True),
    Option("quality_gate", "bool", True, label="Fail a run that does no better than chance"),
    Option("weight_decay", "float", None, 0.0, 0.1, label="Weight decay", tasks=(CLASSIFICATION,)),
    Option("momentum", "float", 0.9, 0.0, 0.999, label="Momentum (SGD)", tasks=(CLASSIFICATION,)),
    Option("schedule", "choice", "cosine", choices=("cosine", "step", "none"), label="Learning-rate schedule",
           tasks=(CLASSIFICATION,)),
    Option("warmup_epochs", "int", None, 0, 50, label="Warm-up epochs", tasks=(CLASSIFICATION,)),
    Option("label_smoothing", "float", None, 0.0, 0.5, label="Label smoothing", tasks=(CLASSIFICATION,)),
    Option("hflip", "bool", None, label="Horizontal flips", tasks=(CLASSIFICATION,),
           help="Off for digits and text, where a mirror image is another class."),
    Option("precise_bn", "bool", False, label="Recompute BatchNorm statistics before evaluating",
           tasks=(CLASSIFICATION,)),
    Option("seed", "int", 0, 0, 2**31 - 1, label="Random seed"),
    Option("num_workers", "int", 0, 0, 16, label="Data-loading processes", tasks=(CLASSIFICATION,)),
    Option("amp", "bool", True, label="Mixed precision on CUDA", tasks=(CLASSIFICATION,)),
    # Detection (ultralytics) uses its own names.
    Option("batch", "int", 16, 1, 256, label="Batch size", tasks=(DETECTION,), advanced=True),
    Option("workers", "int", 0, 0, 16, label="Data-loading processes", tasks=(DETECTION,)),
    Option("overrides", "group", label="Ultralytics hyperparameters", tasks=(DETECTION,), schema=(
        Option("lr0", "float", None, 1e-6, 1.0, label="Initial learning rate"),
        Option("lrf", "float", None, 1e-4, 1.0, label="Final learning rate fraction"),
        Option("momentum", "float", None, 0.0, 0.999),
        Option("weight_decay", "float", None, 0.0, 0.1),
        Option("warmup_epochs", "float", None, 0.0, 50.0),
        Option("close_mosaic", "int", None, 0, 500),
        Option("nbs", "int", None, 1, 1024, label="Nominal batch size"),
        Option("optimizer", "choice", None, choices=("SGD", "Adam", "AdamW", "auto")),
        Option("cos_lr", "bool", None),
        Option("box", "float", None, 0.0, 50.0),
        Option("cls", "float", None, 0.0, 50.0),
        Option("dfl", "float", None, 0.0, 50.0),
        Option("hsv_h", "float", None, 0.0, 1.0),
        Option("hsv_s", "float", None, 0.0, 1.0),
        Option("hsv_v", "float", None, 0.0, 1.0),
        Option("degrees", "float", None, 0.0, 180.0),
        Option("translate", "float", None, 0.0, 1.0),
        Option("scale", "float", None, 0.0, 1.0),
        Option("fliplr", "float", None, 0.0, 1.0),
        Option("flipud", "float", None, 0.0, 1.0),
        Option("mosaic", "float", None, 0.0, 1.0),
        Option("mixup", "float", None, 0.0, 1.0),
    )),
)

HPO_OPTIONS: tuple[Option, ...] = (
    Option("trials", "int", 12, 2, 200, label="trials in all"),
    Option("minutes", "int", 30, 1, 24 * 60, label="minutes per worker at most"),
    Option("epochs", "int", 3, 1, 100, label="epochs per trial"),
    Option("workers", "int", 1, 1, 16, label="workers running trials at once"),
)

NAS_OPTIONS: tuple[Option, ...] = (
    Option("epochs", "int", 8, 1, 200, label="supernet epochs"),
    Option("finetune_epochs", "int", 2, 1, 50, label="fine-tuning epochs of the chosen subnet"),
    Option("population", "int", 24, 4, 200, label="subnets per generation of the search"),
    Option("generations", "int", 8, 1, 100, label="generations of the search"),
    # Written when a searched subnet is adopted: which search job (of this project, checked) and device.
    Option("job", "int", None, 1, 2**63 - 1, label="the adopted search job"),
    Option("device", "name", None, label="the device whose subnet was adopted"),
)

# The page's "Advanced training options": the train stage's options marked advanced, for a task.


def advanced_train_options(task: str) -> tuple[Option, ...]:
    return tuple(o for o in TRAIN_OPTIONS if o.advanced and o.applies_to(task))
