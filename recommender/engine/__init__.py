"""The recommender's Django-free core: costs, the latency and memory models fitted to records, accuracy priors,
ranking, and the paper's Table 1 rules. Plain values in and out; no Django, no app, no other core."""
