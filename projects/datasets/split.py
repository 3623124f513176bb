"""A seeded, stratified train/val split for uploads that come without one."""

import random
from collections.abc import Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")


def split_groups(groups: dict[Hashable, Sequence[T]], *, seed: int, val_fraction: float) -> tuple[list[T], list[T]]:
    """Move about val_fraction of each group to val, always leaving at least one item of a group in train.

    Each group is shuffled by its own generator, seeded by (seed, group): adding a class to a dataset does not
    reshuffle the others, and the same upload and seed always give the same split. Callers pass items in a
    stable order (sorted by name), so the zip tool's member order does not matter.
    """
    train: list[T] = []
    val: list[T] = []
    for key in sorted(groups, key=str):
        items = list(groups[key])
        random.Random(f"{seed}:{key}").shuffle(items)
        n_val = val_count(len(items), val_fraction)
        val += items[:n_val]
        train += items[n_val:]
    return train, val


def val_count(size: int, val_fraction: float) -> int:
    """How many of a group of `size` items split_groups moves to val: the nearest whole share, one left in train."""
    return min(int(size * val_fraction + 0.5), size - 1)


def smallest_group_with_val(val_fraction: float) -> int:
    """How many items one group needs before split_groups moves one of them to val (0 when none ever moves)."""
    if val_fraction <= 0:
        return 0
    n = 2
    while val_count(n, val_fraction) < 1:
        n += 1
    return n
