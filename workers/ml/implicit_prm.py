"""Round-0 selector: an implicit PRM (Yuan et al. 2024, "Free Process Rewards without Process Labels").

A causal LM pi_theta is trained from a reference pi_ref (the same base) on outcome labels only. With
y the response tokens, its solution reward is

    r = beta * sum_t log( pi_theta(y_t | y_<t) / pi_ref(y_t | y_<t) )

and training fits sigmoid(r) to the graded outcome c (see implicit_training). The paper's point is that
this reward decomposes over the response for free: a step's reward is the same sum restricted to its
tokens,

    r_k = beta * sum_{t in step k} log( pi_theta(y_t | y_<t) / pi_ref(y_t | y_<t) ),

so sum_k r_k == r, and the cumulative q_k = r_1 + ... + r_k is a reward of the prefix ending at step k;
sigmoid(q_k) estimates P(the solution ends correct | the prefix up to step k).

Layout and encoding are the step-head PRM's (workers.ml.prm): `[prefix] problem SEP step_1 SEP ...
step_n SEP`, each piece tokenised on its own. The "response" is everything after the problem's SEP,
and each SEP belongs to the step it follows, so the steps' spans tile the response exactly. Truncation
keeps whole leading steps; cut steps get None, and the solution is then unscorable (no solution
score: a min over the steps that fit would be an optimistic partial score).

What is offered, stored and read where:

- `step_rewards` gives r_k, `prefix_values` the running sums q_k, `score` sigmoid(q_k): the estimated
  P(the solution ends correct | the prefix up to step k).
- VerifierScore.step_scores stores sigmoid(q_k) per step (6 decimals), as labeling.services.rounds.scoring
  writes any scorer's `score`; labeling.core.step_scores reads a float step as its P(not negative), and
  `implicit_step_rewards` recovers r_k = q_k - q_(k-1) from stored values (up to the rounding).
- The solution score (VerifierScore.score, what rounds select by) is min_k sigmoid(q_k) by default
  (config "score_how"), None when a step was cut.
- Evaluation (labeling.services.training.evaluation) reads sigmoid(q_k) as each step's P(not negative):
  step AUROC over them, and the first-error prediction is the first step whose sigmoid(q_k) falls below
  the threshold (0.5: q_k < 0), i.e. the first prefix after which the model expects a wrong outcome.
  r_k is not read there: a step with r_k < 0 that leaves q_k > 0 lowers the estimate without making
  the outcome more likely wrong than right.

Aggregation. A solution is scored by `min` over steps by default: the weakest prefix, i.e. the point
where the model was least sure the solution could still end correct, which is what a selector hunting
for a first wrong step needs; `last` is sigmoid(r), the outcome estimate the model was trained on. A
product of sigmoid(q_k) is not offered: the q_k are nested (each contains the ones before), not
independent per-step events, so their product has no probabilistic meaning.
"""
import math

from labeling.core.step_scores import scorable_solution_score
from workers.ml.loading import ModelCache, cache_size, load_causal_lm, load_tokenizer
from workers.ml.prm import DEFAULT_SEPARATOR, StepPRM, right_padded

DEFAULT_BETA = 0.05
AGGREGATIONS = ("min", "last")

# One pair: each entry already holds two models (policy and reference), and the implicit PRM is the
# round-0 selector, replaced by step-head versions once labels exist.
_CACHE = ModelCache(cache_size(1))


class ImplicitPRM(StepPRM):
    """Scores steps with a policy/reference pair. Subclasses StepPRM only to share its exact
    encoding (separator handling, prefix, truncation), so training and both selectors see the
    same token layout; StepPRM's step-head scoring is replaced, not used."""

    def __init__(self, policy, reference, tokenizer, *, beta=DEFAULT_BETA, step_separator=DEFAULT_SEPARATOR,
                 device="cpu"):
        if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta > 0):
            raise ValueError(f"beta must be a positive number, got {beta!r}")
        super().__init__(policy, tokenizer, step_separator=step_separator, device=device)
        self.policy = policy
        self.reference = reference
        self.beta = float(beta)
        self.causal = is_causal(policy) and is_causal(reference)
        # A policy trained with a frozen trunk shares it with the reference: run it once per batch.
        from workers.ml.shared_trunk import shared_layers

        self.shared = shared_layers(policy, reference) if self.causal else 0

    # --- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, policy_spec, reference_spec, *, beta=DEFAULT_BETA, step_separator=DEFAULT_SEPARATOR):
        """Load policy, reference and the policy's tokenizer, cached per arguments (see _CACHE)."""
        return _CACHE.get((str(policy_spec), str(reference_spec), float(beta), step_separator),
                          lambda: cls._load_pair(policy_spec, reference_spec, beta, step_separator))

    @classmethod
    def _load_pair(cls, policy_spec, reference_spec, beta, step_separator):
        from workers.ml.device import pick_device
        from workers.ml.sources import resolve

        device, dtype = pick_device()
        policy = load_causal_lm(policy_spec, dtype, device).eval()
        # One copy when both specs name the same weights: half the memory, and rewards exactly 0.
        same = resolve(policy_spec) == resolve(reference_spec)
        reference = policy if same else load_causal_lm(reference_spec, dtype, device).eval()
        return cls(policy, reference, load_tokenizer(policy_spec), beta=beta, step_separator=step_separator,
                   device=device)

    # --- encoding --------------------------------------------------------------------------

    def encode_spans(self, items, max_length=1024):
        """Per (problem, steps): (input_ids, spans); spans[k] is (first, last) token index (inclusive)
        of step k and its separator, or None for a step cut by truncation."""
        out = []
        for problem_ids, step_ids in self._encode_items(items):
            ids, ends = self._assemble(problem_ids, step_ids, max_length)
            kept = sum(e is not None for e in ends)
            # The kept steps end the sequence, so the response starts their total length before its end.
            first = len(ids) - sum(len(step_ids[k]) + len(self.sep_ids) for k in range(kept))
            spans = []
            for end in ends:
                spans.append(None if end is None else (first, end))
                first = first if end is None else end + 1
            out.append((ids, spans))
        return out

    # --- scoring ---------------------------------------------------------------------------

    def step_rewards(self, items, batch_size=8, max_length=1024):
        """Per solution, per step: r_k as a float, or None for a step cut by truncation."""
        return self._per_step(self.encode_spans(list(items), max_length), batch_size, self.log_ratios,
                              lambda ratios, row, span: self.beta * float(ratios[row, span[0]:span[1] + 1].sum()))

    def prefix_values(self, items, batch_size=8, max_length=1024):
        """Per solution, per step: q_k = r_1 + ... + r_k, or None for a step cut by truncation."""
        out = []
        for rewards in self.step_rewards(items, batch_size=batch_size, max_length=max_length):
            q, values = 0.0, []
            for r in rewards:
                if r is not None:
                    q += r
                values.append(None if r is None else q)
            out.append(values)
        return out

    def score(self, items, batch_size=8, max_length=1024):
        """Per solution, per step: sigmoid(q_k), the estimated P(correct outcome | prefix to step k)."""
        return [[None if q is None else sigmoid(q) for q in values]
                for values in self.prefix_values(items, batch_size=batch_size, max_length=max_length)]

    def score_stream(self, iterable, chunk=2048, batch_size=8, max_length=1024):
        return super().score_stream(iterable, chunk=chunk, batch_size=batch_size, max_length=max_length)

    def log_ratios(self, sequences):
        """(batch, width) float64 on CPU: log pi_theta - log pi_ref of each token given the ones before."""
        if self.shared:
            policy, reference = paired_token_logprobs(self.policy, self.reference, sequences, self.pad_id,
                                                      self.device, self.shared)
            return policy.double().cpu() - reference.double().cpu()
        policy = token_logprobs(self.policy, sequences, self.pad_id, self.device, self.causal)
        if self.reference is self.policy:
            return (policy - policy).double().cpu()
        reference = token_logprobs(self.reference, sequences, self.pad_id, self.device, self.causal)
        # float64 so sums over long steps add up to the solution reward without drift.
        return policy.double().cpu() - reference.double().cpu()


def _rows_logprobs(logits, input_ids, sequences):
    import torch
    import torch.nn.functional as F

    width = input_ids.shape[1]
    rows = []
    for row, seq in enumerate(sequences):
        n = len(seq)
        logp = -F.cross_entropy(logits[row, :n - 1].float(), input_ids[row, 1:n], reduction="none")
        rows.append(F.pad(logp, (1, width - n)))
    return torch.stack(rows)


def paired_token_logprobs(policy, reference, sequences, pad_id, device, shared):
    """token_logprobs of both models, their `shared` lower layers run once (see workers.ml.shared_trunk)."""
    from workers.ml.shared_trunk import paired_logits

    input_ids, _ = right_padded(sequences, pad_id)
    input_ids = input_ids.to(device)
    logits_p, logits_r = paired_logits(policy, reference, input_ids, shared)
    return _rows_logprobs(logits_p, input_ids, sequences), _rows_logprobs(logits_r, input_ids, sequences)


def token_logprobs(model, sequences, pad_id, device, causal=True):
    """(batch, width) float32: entry t is log p(ids[t] | ids[<t]); 0 at t=0 and at padding.

    Right padding, as in StepPRM: real tokens' logits match an unpadded pass. Log-softmax runs on
    float32 logits, one row at a time, so bf16 models stay accurate and only one row's float copy of
    the vocabulary-wide logits exists at once. Gradients flow when called outside inference_mode.
    """
    input_ids, attention = right_padded(sequences, pad_id)
    input_ids = input_ids.to(device)
    mask = None if causal else attention.to(device)
    logits = model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits
    return _rows_logprobs(logits, input_ids, sequences)


def is_causal(model):
    return any(getattr(m, "is_causal", False) for m in model.modules())


def sigmoid(x):
    # Split by sign so exp never overflows for large |x|.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def load(policy_spec, reference_spec, **kwargs):
    return ImplicitPRM.load(policy_spec, reference_spec, **kwargs)


def solution_score(step_values, how="min"):
    """A solution's score from its per-step sigmoid(q_k); None when it is unscorable (a step is None: cut).

    "min": the weakest prefix (default); "last": sigmoid(r), the trained outcome estimate.
    """
    if how == "product":
        raise ValueError("how='product' is not meaningful for an implicit PRM: its per-step values are "
                         "nested prefix estimates sigmoid(q_k), not independent per-step probabilities; "
                         "use 'min' or 'last'")
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}; expected one of {', '.join(AGGREGATIONS)}")
    return scorable_solution_score(step_values, how=how)
