"""deployment.engine.timing: the one timing routine of the benchmark stage, calibrate and the latency bench.
Django-free; a fake clock makes every run's cost exact."""

import numpy as np
import pytest

from deployment.engine import timing


class FakeRun:
    """A run whose CPU cost (ms) is read from a list, advancing a fake CPU clock."""

    def __init__(self, costs):
        self.costs, self.now, self.calls = list(costs), 0.0, 0

    def clock(self) -> float:
        return self.now

    def __call__(self):
        cost = self.costs[min(self.calls, len(self.costs) - 1)]
        self.calls += 1
        self.now += cost / 1000


@pytest.mark.parametrize("values", [[3.0], [1.0, 2.0], [5.0, 1.0, 4.0, 2.0, 3.0], list(np.linspace(0, 7, 17))])
@pytest.mark.parametrize("q", [0, 10, 25, 50, 90, 100])
def test_percentile_is_numpys(values, q):
    assert timing.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_warm_up_runs_until_the_latency_is_stable():
    # the first runs are slow (cold caches), then steady at 10 ms
    run = FakeRun([50, 40, 30, 20, 15, 12] + [10] * 100)
    runs = timing.warm_up(run, clock=run.clock, min_runs=3, min_seconds=0, window=3, tolerance=0.03)
    assert 6 < runs <= 12  # on past the slow runs, and stops once two windows agree


def test_warm_up_gives_up_at_its_time_limit():
    run = FakeRun([10 * (1 + i % 2) for i in range(1000)])  # never stable: alternates 10 ms and 20 ms
    runs = timing.warm_up(run, clock=run.clock, min_runs=3, min_seconds=0, max_seconds=0.0, window=1,
                          tolerance=0.01)
    assert runs == 3  # the fewest runs (more than 2 × window), then the (zero) time limit


def test_a_block_slowed_throughout_does_not_move_the_figure():
    # after warm-up: five blocks of four runs; one block (a neighbour's burst) is 50 % slower throughout, and single
    # runs elsewhere are slowed twice over
    warm = [10.0] * max(3, 2 * timing.STABLE_WINDOW)  # exactly the warm-up: steady from the start
    blocks = [[10, 10.2, 20, 10.1], [10.1, 10, 10, 25], [15, 15.2, 15.1, 15], [10, 10.1, 10.2, 10], [10, 30, 10, 10.1]]
    run = FakeRun(warm + [c for b in blocks for c in b])
    out = timing.time_runs(run, clock=run.clock, blocks=5, min_block_runs=4, min_block_seconds=0, max_runs=20,
                           warmup_runs=3, warmup_seconds=0)
    assert out["runs"] == 20 and len(out["block_ms"]) == 5 and len(out["wall_ms"]) == 20
    assert out["latency_ms"] == pytest.approx(10.0, rel=0.02)
    assert out["block_ms"][2] == pytest.approx(15.0, rel=0.01)
    assert np.percentile(out["cpu_ms"], 10) < out["latency_ms"] * 1.01


def test_a_reference_reads_the_model_relative_to_the_machine():
    shared = {"now": 0.0}

    def clock():
        return shared["now"]

    def run_model():
        shared["now"] += 0.020

    def run_reference():
        shared["now"] += 0.005

    out = timing.time_runs(run_model, clock=clock, reference=run_reference, blocks=3, min_block_runs=2,
                           min_block_seconds=0, warmup_seconds=0)
    assert out["latency_ms"] == pytest.approx(20.0) and out["reference_ms"] == pytest.approx(5.0)
    assert out["relative_to_reference"] == pytest.approx(4.0)


def test_between_is_called_after_every_timed_run():
    run = FakeRun([1.0])
    seen = []
    out = timing.time_runs(run, clock=run.clock, blocks=2, min_block_runs=3, min_block_seconds=0, max_runs=6,
                           warmup_seconds=0, between=seen.append)
    assert seen == list(range(1, out["runs"] + 1)) and out["runs"] == 6


def test_session_options_fix_the_threads_and_run_sequentially():
    ort = pytest.importorskip("onnxruntime")
    options = timing.session_options(ort, threads=1)
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert timing.session_options(ort, threads=None).intra_op_num_threads == 0  # ONNX Runtime's default


def test_alternating_blocks_read_the_model_against_the_reference_as_the_machine_drifts():
    # the machine slows by half from the third pair of blocks on: both sides of a pair slow alike
    shared = {"now": 0.0, "calls": 0}

    def clock():
        return shared["now"]

    def slow() -> float:
        return 1.5 if shared["calls"] > 40 else 1.0

    def run_model():
        shared["calls"] += 1
        shared["now"] += 0.002 * slow()

    def run_reference():
        shared["calls"] += 1
        shared["now"] += 0.008 * slow()

    out = timing.time_runs(run_model, clock=clock, reference=run_reference, blocks=5, min_block_runs=4,
                           min_block_seconds=0, max_runs=20, warmup_runs=3, warmup_seconds=0, alternate="block")
    assert out["relative_to_reference"] == pytest.approx(0.25)
    assert out["alternate"] == "block" and len(out["reference_block_ms"]) == 5 and out["runs"] == 20
    assert out["block_ms"][0] == pytest.approx(2.0) and out["block_ms"][-1] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="alternate"):
        timing.time_runs(run_model, clock=clock, alternate="interleaved")
