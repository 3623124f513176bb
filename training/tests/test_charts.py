"""The training charts read at a glance: a diverged epoch does not flatten the other curves."""

from training.templatetags.training_charts import line_chart


def _heights(chart) -> dict[str, list[float]]:
    return {s["key"]: [float(p.split(",")[1]) for p in s["points"].split()] for s in chart["series"]}


def test_a_loss_spanning_more_than_a_hundredfold_is_drawn_on_a_log_scale():
    history = [{"epoch": 1, "train_loss": 2.1, "val_loss": 1.0e6}, {"epoch": 2, "train_loss": 1.2, "val_loss": 3.0},
               {"epoch": 3, "train_loss": 0.6, "val_loss": 0.9}]
    chart = line_chart(history, "train_loss,val_loss", "Loss")
    assert chart["log_scale"] and chart["high"] == "1e+06" and chart["low"] == "0.60"
    train = _heights(chart)["train_loss"]
    # Training loss falls from 2.1 to 0.6: on a log axis that is a visible drop, not a flat line at the bottom.
    assert train[2] - train[0] > 5  # pixels; on a linear axis up to 1e6 it would be 0.0001
    assert [s["label"] for s in chart["series"]] == ["train", "validation"]


def test_losses_in_a_narrow_range_and_accuracies_stay_linear():
    history = [{"epoch": 1, "train_loss": 2.0, "top1": 0.3}, {"epoch": 2, "train_loss": 1.0, "top1": 0.6}]
    assert not line_chart(history, "train_loss", "Loss")["log_scale"]
    accuracy = line_chart(history, "top1", "Accuracy", True)
    assert not accuracy["log_scale"] and accuracy["high"] == "100.00" and accuracy["series"][0]["label"] == "val top-1"


def test_a_series_has_the_same_colour_in_the_loss_and_the_accuracy_chart():
    """Training curves in one colour and validation curves in another, whichever chart draws them (the accuracy
    chart used to give val top-1 the blue that the loss chart gave the training loss)."""
    history = [{"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.2 / e, "top1": 0.3 * e, "top5": 0.5,
                "train_top1": 0.25 * e} for e in (1, 2, 3)]
    colours = {s["key"]: s["colour"] for keys, title, percent in (("train_loss,val_loss", "Loss", False),
                                                                  ("top1,top5,train_top1", "Accuracy", True))
               for s in line_chart(history, keys, title, percent)["series"]}
    assert colours["train_loss"] == colours["train_top1"]
    assert colours["val_loss"] == colours["top1"]
    assert colours["train_loss"] != colours["val_loss"] and colours["top5"] not in (colours["train_loss"],
                                                                                    colours["val_loss"])
