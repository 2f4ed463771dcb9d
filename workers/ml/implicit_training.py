"""Training the implicit PRM (workers.ml.implicit_prm) from outcome labels only.

Loss per solution, with r = beta * sum over response tokens of (log pi_theta - log pi_ref) and c = 1
when the graded final answer is correct:

    loss = -[ c * log sigmoid(r) + (1 - c) * log(1 - sigmoid(r)) ]   (binary cross-entropy on r)

The reference is frozen, so its part of r is a constant per solution: it is computed once, before the
first update, and the reference model is then dropped. When the reference is the base itself (the
default) the untrained policy *is* the reference, so no second model is ever loaded.

Sequences use exactly the scorer's encoding (ImplicitPRM.encode_spans), so the response tokens trained
on are the ones later scored. A solution longer than max_length is trained on its longest run of whole
leading steps with the final outcome as label: sigmoid(q_k) is meant to estimate the outcome from a
prefix anyway. One whose first step does not fit is skipped.
"""
import contextlib
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

from workers.ml.implicit_prm import DEFAULT_BETA, ImplicitPRM, token_logprobs
from workers.ml.loading import load_causal_lm, load_tokenizer
from workers.ml.prm import DEFAULT_SEPARATOR

MIN_MAX_LENGTH = 16
CONFIG_FILE = "implicit_prm.json"


def train_implicit_prm(*, base_spec, items, out_dir, beta=DEFAULT_BETA, learning_rate=2e-5, epochs=1, batch_size=4,
                       max_length=512, seed=0, step_separator=DEFAULT_SEPARATOR, progress=None,
                       reference_spec=None, trainable_layers=None) -> dict:
    """Train a policy from `base_spec` on (problem, steps, is_correct) items; save it to `out_dir`.

    `progress(step, total_steps, loss)` is called after every optimizer step; an exception in it
    aborts training and nothing is written. The model appears at `out_dir` only once fully saved.
    """
    items = list(items)
    if trainable_layers is not None and (isinstance(trainable_layers, bool) or not isinstance(trainable_layers, int)
                                         or trainable_layers < 1):
        raise ValueError(f"trainable_layers must be a positive integer or None, got {trainable_layers!r}")
    _validate(items=items, beta=beta, learning_rate=learning_rate, epochs=epochs, batch_size=batch_size,
              max_length=max_length, seed=seed, progress=progress)
    import torch
    import torch.nn.functional as F

    from workers.ml.device import pick_device
    from workers.ml.sources import resolve

    device, _ = pick_device()
    cuda = device == "cuda"
    # Master weights stay fp32 for AdamW; on CUDA the matmuls run under bf16 autocast instead.
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    torch.manual_seed(seed)
    started = time.perf_counter()

    tokenizer = load_tokenizer(base_spec)
    policy = load_causal_lm(base_spec, torch.float32, device).eval()
    separate_ref = reference_spec is not None and resolve(reference_spec) != resolve(base_spec)
    reference = load_causal_lm(reference_spec, torch.float32, device).eval() if separate_ref else policy
    prm = ImplicitPRM(policy, reference, tokenizer, beta=beta, step_separator=step_separator, device=device)

    encoded = prm.encode_spans([(p, s) for p, s, _ in items], max_length)
    pad_id, causal = prm.pad_id, prm.causal
    rows, truncated = [], 0
    for (ids, spans), (_, _, correct) in zip(encoded, items):
        kept = [s for s in spans if s is not None]
        if not kept:
            continue
        truncated += len(kept) < len(spans)
        rows.append((ids, kept[0][0], kept[-1][1], 1.0 if correct else 0.0))
    if not rows:
        raise ValueError(f"max_length={max_length} leaves no room for the first step of any item")

    def policy_sums(model, batch):
        lp = token_logprobs(model, [rows[i][0] for i in batch], pad_id, device, causal)
        return torch.stack([lp[row, rows[i][1]:rows[i][2] + 1].sum() for row, i in enumerate(batch)])

    # Same autocast as training, so at step 0 the policy's sums equal these exactly and r == 0.
    ref_sums = torch.zeros(len(rows), dtype=torch.float32)
    with torch.inference_mode(), autocast():
        by_length = sorted(range(len(rows)), key=lambda i: len(rows[i][0]), reverse=True)
        for start in range(0, len(rows), batch_size):
            batch = by_length[start:start + batch_size]
            ref_sums[batch] = policy_sums(reference, batch).float().cpu()
    del reference, prm
    if separate_ref and cuda:
        torch.cuda.empty_cache()
    ref_sums = ref_sums.to(device)
    labels = torch.tensor([r[3] for r in rows], device=device)

    if cuda:
        policy.config.use_cache = False
        policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    # Frozen lower layers stay equal to the reference's, so scoring runs them once for both (shared_trunk),
    # and no gradient flows below the trainable layers.
    frozen = 0
    if trainable_layers is not None and not separate_ref:
        from workers.ml.shared_trunk import freeze_trunk

        frozen = freeze_trunk(policy, trainable_layers)
    policy.train()
    # No weight decay: decay pulls weights toward zero, i.e. away from the reference, whatever the labels.
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=learning_rate,
                                  weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    per_epoch = math.ceil(len(rows) / batch_size)
    total = epochs * per_epoch
    curve, tokens, step = [], 0, 0
    for _ in range(epochs):
        order = torch.randperm(len(rows), generator=generator).tolist()
        for start in range(0, len(rows), batch_size):
            batch = order[start:start + batch_size]
            with autocast():
                sums = policy_sums(policy, batch)
            reward = beta * (sums.float() - ref_sums[batch])
            loss = F.binary_cross_entropy_with_logits(reward, labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            tokens += sum(len(rows[i][0]) for i in batch)
            curve.append(float(loss.detach()))
            if progress is not None:
                progress(step, total, curve[-1])

    if cuda:
        policy.gradient_checkpointing_disable()
        policy.config.use_cache = True
    policy.eval()
    meta = {"beta": beta, "step_separator": step_separator, "base": str(base_spec),
            "reference": str(reference_spec if reference_spec is not None else base_spec)}
    _save_atomically(policy, tokenizer, Path(out_dir), meta)
    seconds = time.perf_counter() - started
    return {
        "loss_curve": curve, "steps": step, "items": len(rows), "skipped": len(items) - len(rows),
        "truncated": truncated, "positives": int(labels.sum().item()), "tokens": tokens,
        "seconds": seconds, "tokens_per_second": tokens / seconds if seconds > 0 else 0.0,
        "beta": beta, "learning_rate": learning_rate, "epochs": epochs, "batch_size": batch_size,
        "max_length": max_length, "seed": seed, "step_separator": step_separator, "device": device,
        "dtype": "bfloat16" if cuda else "float32", "parameters": sum(p.numel() for p in policy.parameters()),
        "base_spec": str(base_spec), "reference_spec": meta["reference"], "out_dir": str(out_dir),
        "trainable_layers": trainable_layers, "frozen_layers": frozen,
    }


def _validate(*, items, beta, learning_rate, epochs, batch_size, max_length, seed, progress):
    def number(name, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")

    def integer(name, value, minimum):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")

    number("learning_rate", learning_rate)
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    number("beta", beta)
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta!r}")
    integer("epochs", epochs, 1)
    integer("batch_size", batch_size, 1)
    integer("max_length", max_length, MIN_MAX_LENGTH)
    integer("seed", seed, 0)
    if progress is not None and not callable(progress):
        raise ValueError("progress must be callable or None")
    if not items:
        raise ValueError("items is empty: training needs at least one graded solution")
    for n, item in enumerate(items):
        if not (isinstance(item, (tuple, list)) and len(item) == 3):
            raise ValueError(f"items[{n}] must be (problem, steps, is_correct)")
        problem, steps, _ = item
        if not isinstance(problem, str) or isinstance(steps, str) or not steps \
                or not all(isinstance(s, str) for s in steps):
            raise ValueError(f"items[{n}] needs a problem string and a non-empty list of step strings")


def _save_atomically(policy, tokenizer, out_dir, meta):
    """Write beside out_dir and rename at the end, so a crash never leaves a half-written model there."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    old = None
    try:
        policy.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
        if out_dir.exists():  # a re-run of the same job replaces the earlier model
            old = tmp.with_name(tmp.name + ".old")
            out_dir.rename(old)
        tmp.rename(out_dir)
    except BaseException:
        if old is not None and old.exists() and not out_dir.exists():
            old.rename(out_dir)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
