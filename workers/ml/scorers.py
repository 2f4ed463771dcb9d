"""The scorer a model version calls for: its architecture decides the class and the solution score.

Both kinds give `score(items, batch_size=, max_length=)` (per-step values) and
`solution_score(step_values)`: a step-head PRM's steps are (p_neg, p_neu, p_pos) triples combined
as the product of P(not negative) (PRM800K's convention; "min" and "last" optional); an implicit
PRM's steps are sigmoid(q_k) values combined by their minimum. A solution with a step cut by
`max_length` (its value None) is unscorable: `solution_score` returns None, never a partial product.
`max_length` should be the version's own (config["max_length"], what it was trained with; see
labeling.services.rounds.scoring.scoring_max_length).
"""


class Scorer:
    """A loaded PRM and the rule that turns its per-step values into a solution score."""

    def __init__(self, prm, aggregate, how):
        self.prm, self.aggregate, self.how = prm, aggregate, how

    def score(self, items, batch_size=16, max_length=1024):
        return self.prm.score(items, batch_size=batch_size, max_length=max_length)

    def solution_score(self, step_values):
        return self.aggregate(step_values, how=self.how)


def scorer_for(*, path: str, config: dict):
    """Load (cached: workers.ml.loading) the scorer of a registered PRM: `path` and `config` as in ModelVersion."""
    from workers.ml.sources import resolve

    architecture = config.get("architecture", "step_head")
    separator = config.get("step_separator", "\n\n")
    if architecture == "implicit":
        from workers.ml.implicit_prm import ImplicitPRM

        from workers.ml.implicit_prm import solution_score

        prm = ImplicitPRM.load(path, config["reference"], beta=float(config.get("beta", 0.05)),
                               step_separator=separator)
        return Scorer(prm, solution_score, config.get("score_how", "min"))
    if architecture == "step_head":
        from workers.ml.prm import StepPRM, solution_score

        model_path, gguf_file = resolve(path)
        prm = StepPRM.load(model_path, gguf_file, step_separator=separator)
        return Scorer(prm, solution_score, config.get("score_how", "product"))
    if architecture == "orm":  # an outcome reward model: one value per solution (workers.ml.orm)
        from workers.ml.orm import OutcomeRM
        from workers.ml.orm import solution_score as orm_score

        model_path, gguf_file = resolve(path)
        return Scorer(OutcomeRM.load(model_path, gguf_file, step_separator=separator), orm_score, "last")
    raise ValueError(f"unknown PRM architecture {architecture!r}")
