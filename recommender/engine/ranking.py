"""Rank candidates for a device: the most accurate one expected to fit the latency budget and memory limit first.
Django-free.

"Expected to fit" means the predicted latency is within the budget and the predicted memory within the limit.
The budget is never knowingly broken: a candidate predicted over it is never the recommendation; when nothing
fits, the ranking says so and names the closest candidate instead.
"""

from dataclasses import asdict, dataclass

from .accuracy import Expected
from .costs import Costs
from .latency import LatencyModel
from .memory import MemoryModel

MIB = 2**20


@dataclass(frozen=True)
class Candidate:
    key: str  # zoo key
    label: str
    family: str
    level: int
    input_size: int
    costs: Costs


@dataclass(frozen=True)
class Ranked:
    key: str
    label: str
    family: str
    level: int
    input_size: int
    params: int
    gflops: float
    weight_mb: float
    peak_activation_mb: float
    latency_ms: float
    memory_mb: float
    accuracy: float
    accuracy_source: str
    fits_latency: bool
    fits_memory: bool
    status: str  # "recommended", "fits", "too_slow", "too_big", "too_slow_and_big"
    reason: str
    accuracy_metric: str = "top-1"  # what accuracy measures, in percent (accuracy.METRICS)

    @property
    def accuracy_text(self) -> str:
        return f"{self.accuracy:.1f}% {self.accuracy_metric}"

    @property
    def fits(self) -> bool:
        return self.fits_latency and self.fits_memory


@dataclass(frozen=True)
class Ranking:
    items: list[Ranked]
    top: Ranked | None
    closest: Ranked | None  # when nothing fits: the candidate that misses by the least
    summary: str
    confidence: str
    records: int
    budget_ms: float | None
    memory_limit_mb: float | None

    def as_dict(self) -> dict:
        return {"items": [asdict(i) for i in self.items], "top": asdict(self.top) if self.top else None,
                "closest": asdict(self.closest) if self.closest else None, "summary": self.summary,
                "confidence": self.confidence, "records": self.records, "budget_ms": self.budget_ms,
                "memory_limit_mb": self.memory_limit_mb}


def rank(candidates: list[Candidate], *, latency: LatencyModel, memory: MemoryModel,
         accuracy: dict[str, Expected], budget_ms: float | None, memory_limit_mb: float | None) -> Ranking:
    scored = [_score(c, latency, memory, accuracy[c.key], budget_ms, memory_limit_mb) for c in candidates]
    fitting = sorted((s for s in scored if s.fits), key=lambda s: (-s.accuracy, s.latency_ms))
    missing = sorted((s for s in scored if not s.fits), key=lambda s: _miss(s, budget_ms, memory_limit_mb))
    top = fitting[0] if fitting else None
    items = [_explain(s, top, budget_ms, memory_limit_mb) for s in fitting + missing]
    closest = None if top else (items[0] if items else None)
    return Ranking(items=items, top=items[0] if top else None, closest=closest,
                   summary=_summary(items[0] if top else None, closest, budget_ms, memory_limit_mb),
                   confidence=latency.confidence(), records=latency.records, budget_ms=budget_ms,
                   memory_limit_mb=memory_limit_mb)


def _score(c: Candidate, latency: LatencyModel, memory: MemoryModel, expected: Expected, budget_ms, limit_mb):
    predicted_ms = latency.predict_ms(c.costs)
    predicted_mb = memory.predict_mb(c.costs)
    fits_latency = budget_ms is None or predicted_ms <= budget_ms
    fits_memory = limit_mb is None or predicted_mb <= limit_mb
    status = "fits" if fits_latency and fits_memory else (
        "too_slow_and_big" if not (fits_latency or fits_memory) else "too_slow" if not fits_latency else "too_big")
    return Ranked(key=c.key, label=c.label, family=c.family, level=c.level, input_size=c.input_size,
                  params=c.costs.params, gflops=c.costs.flops / 1e9,
                  weight_mb=c.costs.weight_bytes_at(latency.precision) / MIB,
                  peak_activation_mb=c.costs.peak_activation_bytes_at(latency.precision) / MIB,
                  latency_ms=predicted_ms, memory_mb=predicted_mb, accuracy=expected.value,
                  accuracy_source=expected.source, fits_latency=fits_latency, fits_memory=fits_memory,
                  status=status, reason="", accuracy_metric=expected.metric)


def _miss(s: Ranked, budget_ms, limit_mb) -> float:
    """How far a candidate misses: the worse of its latency and memory overshoot ratios."""
    over_latency = s.latency_ms / budget_ms if budget_ms else 1.0
    over_memory = s.memory_mb / limit_mb if limit_mb else 1.0
    return max(over_latency, over_memory)


def _explain(s: Ranked, top: Ranked | None, budget_ms, limit_mb) -> Ranked:
    costs = f"{s.latency_ms:.1f} ms, {s.memory_mb:.0f} MiB"
    if s is top:
        reason = (f"Most accurate candidate expected to fit: {costs} (budget {_budget(budget_ms)}, limit "
                  f"{_limit(limit_mb)}); expected {s.accuracy_text} ({s.accuracy_source}).")
        return _with(s, "recommended", reason)
    if s.fits:
        reason = f"Fits ({costs}) but expected {s.accuracy_text} < {top.accuracy:.1f}% of {top.label}."
        if s.accuracy == top.accuracy:
            reason = f"Fits ({costs}), as accurate as {top.label} but slower."
        return _with(s, "fits", reason)
    parts = []
    if not s.fits_latency:
        parts.append(f"predicted {s.latency_ms:.1f} ms is over the {budget_ms:g} ms budget "
                     f"({s.latency_ms / budget_ms:.1f}×)")
    if not s.fits_memory:
        parts.append(f"needs about {s.memory_mb:.0f} MiB, over the {limit_mb:g} MiB limit")
    better = f"; expected {s.accuracy_text} would beat {top.label}" if top and s.accuracy > top.accuracy else ""
    return _with(s, s.status, f"Rejected: {' and '.join(parts)}{better}.")


def _with(s: Ranked, status: str, reason: str) -> Ranked:
    return Ranked(**{**asdict(s), "status": status, "reason": reason})


def _summary(top, closest, budget_ms, limit_mb) -> str:
    if top:
        return (f"{top.label} at {top.input_size} px: predicted {top.latency_ms:.1f} ms within the "
                f"{_budget(budget_ms)} budget and {top.memory_mb:.0f} MiB within {_limit(limit_mb)}.")
    if closest is None:
        return "No candidate to rank."
    return (f"Nothing is expected to fit the {_budget(budget_ms)} budget and {_limit(limit_mb)} limit. The closest "
            f"is {closest.label}: {closest.latency_ms:.1f} ms, {closest.memory_mb:.0f} MiB. Raise the budget, "
            f"lower the input size or pick a faster engine or precision.")


def _budget(budget_ms) -> str:
    return f"{budget_ms:g} ms" if budget_ms else "no latency"


def _limit(limit_mb) -> str:
    return f"{limit_mb:g} MiB" if limit_mb else "no memory"


def paper_comparison(ranking: Ranking, paper_key: str, paper_label: str) -> str:
    """One line on where the paper's rule and the data-driven ranking agree or disagree."""
    paper = next((i for i in ranking.items if i.key == paper_key), None)
    top = ranking.top
    if paper is None:
        return f"The paper's {paper_label} is not among this task's candidates here, so it cannot be compared."
    if top and top.key == paper_key:
        return f"The paper's rule and the data agree: {paper_label}."
    verdict = _paper_verdict(paper.fits, paper.latency_ms, paper.memory_mb)
    choice = f"the data-driven choice is {top.label} (expected {top.accuracy_text})" if top else "nothing fits"
    return f"They disagree: the paper's {paper_label} {verdict}; {choice}."


def sized_comparison(items: list[dict], *, paper_key: str, paper_label: str, top_label: str, trains_key: str,
                     trains_label: str) -> str:
    """paper_comparison's line once the ranking's top was sized down to the dataset (the train stage's rule): the
    paper's model against the one that trains, which the card names just above this line. Compared with the
    ranking's top instead, the card said "the data-driven choice is ResNet-203" under a DenseNet-121 headline."""
    if trains_key == paper_key:
        return (f"The paper's rule and the data agree: {paper_label} (the ranking's top, {top_label}, is too large "
                f"to train on this dataset).")
    paper = next((i for i in items if i["key"] == paper_key), None)
    if paper is None:
        return f"The paper's {paper_label} is not among this task's candidates here, so it cannot be compared."
    verdict = _paper_verdict(paper["fits_latency"] and paper["fits_memory"], paper["latency_ms"], paper["memory_mb"])
    return (f"They disagree: the paper's {paper_label} {verdict}; the data-driven choice is {trains_label}, the "
            f"ranking's top ({top_label}) sized to the dataset.")


def _paper_verdict(fits: bool, latency_ms: float, memory_mb: float) -> str:
    return "fits too" if fits else f"is predicted at {latency_ms:.1f} ms and {memory_mb:.0f} MiB, which does not fit"
