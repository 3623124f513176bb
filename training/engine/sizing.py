"""A model size the data can bear: with few images, a smaller candidate of those the recommender found to fit.
Django-free and torch-free (the wizard's Review step, in the web process, names the model the same rule picks).
"""


# Parameters a from-scratch model may have for a dataset of n training images: few images cannot fit (or
# regularise) a very deep network; this keeps ResNet-18-sized models for a few thousand images.
def params_cap(n_train: int) -> float:
    if n_train < 5000:
        return 12e6
    if n_train < 50000:
        return 30e6
    return float("inf")


def bearable_model(items: list[dict], *, recommended: str | None, n_train: int) -> tuple[str | None, str]:
    """Among the ranked candidates (the recommender's items: key, params, accuracy, fits_latency, fits_memory),
    the model to train from scratch on n_train images, and why. The recommended one when the data can bear it;
    else the most accurate fitting candidate under the cap; else the smallest fitting one."""
    fitting = [i for i in items if i.get("fits_latency", True) and i.get("fits_memory", True)]
    by_key = {i["key"]: i for i in items}
    cap = params_cap(n_train)
    if recommended is None or recommended not in by_key or by_key[recommended]["params"] <= cap or not fitting:
        return recommended, ""
    under = [i for i in fitting if i["params"] <= cap]
    pick = (max(under, key=lambda i: (i.get("accuracy", 0), -i["params"])) if under
            else min(fitting, key=lambda i: i["params"]))
    if pick["key"] == recommended:
        return recommended, ""
    return pick["key"], (f"{by_key[recommended].get('label', recommended)} has "
                         f"{by_key[recommended]['params'] / 1e6:.1f}M parameters, more than {n_train} training "
                         f"images can train from scratch (about {cap / 1e6:.0f}M at most); training "
                         f"{pick.get('label', pick['key'])} ({pick['params'] / 1e6:.1f}M), which also fits the "
                         f"device. Pick a model on the project page to override.")


