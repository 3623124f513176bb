"""Peak memory of a candidate on a device × engine × precision. Django-free.

    memory = w · weights + p · peak activations + runtime

The prior: weights held once (w = 1), the activation peak held twice over (p = 2: engines keep an arena of
reusable buffers), and a fixed runtime allowance. Records with a measured memory refit the three terms by
non-negative least squares, with the prior as three light pseudo-records that hold the terms the records cannot
tell apart.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import nnls

from .costs import Costs

MIB = 2**20
RUNTIME_OVERHEAD_MB = 64.0
PRIOR_COEFFICIENTS = np.array([1.0, 2.0, RUNTIME_OVERHEAD_MB])
PRIOR_PSEUDO_RECORDS = 0.2


def memory_features(costs: Costs, precision: str) -> np.ndarray:
    return np.array([costs.weight_bytes_at(precision) / MIB, costs.peak_activation_bytes_at(precision) / MIB, 1.0])


@dataclass
class MemoryModel:
    precision: str
    coefficients: np.ndarray = field(default_factory=lambda: PRIOR_COEFFICIENTS.copy())
    records: int = 0

    @classmethod
    def fit(cls, precision: str, measured: list[tuple[Costs, float]]) -> "MemoryModel":
        measured = [(c, m) for c, m in measured if m is not None and m > 0]
        if not measured:
            return cls(precision)
        x = np.array([memory_features(c, precision) for c, _ in measured])
        y = np.array([m for _, m in measured])
        scale = np.maximum(y, 1.0)  # relative error: a 10 MiB model matters as much as a 1 GiB one
        prior_x = np.diag(PRIOR_PSEUDO_RECORDS / np.maximum(PRIOR_COEFFICIENTS, 1e-9))
        a = np.vstack([x / scale[:, None], prior_x])
        b = np.concatenate([y / scale, np.full(3, PRIOR_PSEUDO_RECORDS)])
        coefficients, _ = nnls(a, b)
        return cls(precision, coefficients, len(measured))

    def predict_mb(self, costs: Costs) -> float:
        return float(memory_features(costs, self.precision) @ self.coefficients)
