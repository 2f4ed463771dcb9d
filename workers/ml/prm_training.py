"""Training a step-head PRM on human step labels (-1 / 0 / +1 per step).

The model is the one `workers.ml.prm.StepPRM` scores with: a token-classification head with three
classes (0 negative, 1 neutral, 2 positive, i.e. rating + 1) read at the last token of the separator
after each step. Neutral stays a class of its own, as in PRM800K's PRM, so the scorer still returns
(p_neg, p_neu, p_pos) and the choice of what neutral counts as is left to the selection rule.

Inputs are encoded by StepPRM itself (`_encode_batch`: same layout, same separator handling, same
truncation), so training and scoring can never disagree on where a step's label sits. A step rated
None (unlabeled, e.g. after the first -1) or cut off by `max_length` gets no label (-100) and adds
nothing to the loss; the cross-entropy is taken only at labeled separator positions, averaged over
the labeled steps of each optimizer step (so gradient accumulation weights every step equally).

Soft targets (rollout labels, Math-Shepherd's soft estimate): a rating given as a `float` q in [0, 1] is the
probability that the step is good, trained as the target distribution (negative 1 - q, neutral 0,
positive q) with the same cross-entropy; ints -1 / 0 / +1 stay hard classes.

The base is a causal LM (folder, hub id, .gguf or `package:...`; the step head is new and seeded)
or a PRM folder written by this module (training continues). Master weights stay fp32; on CUDA the
forward runs under bf16 autocast with gradient checkpointing, on CPU in plain fp32.

Nothing is written unless training finishes: the model and tokenizer are saved into a hidden temp
folder beside `out_dir` and renamed into place, so a bad hyperparameter, a diverging loss, a stop
request or an exception raised by `progress` leaves `out_dir` absent.
"""
import math
import random
import shutil
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from workers.ml.prm import DEFAULT_SEPARATOR, LABELS, StepPRM

IGNORE = -100
MAX_GRAD_NORM = 1.0
BUCKET_BATCHES = 32  # length-sort within windows of this many batches: little padding, still shuffled


class TrainingStopped(Exception):
    """`stop()` asked for the run to end; nothing was saved."""


class TrainingDiverged(FloatingPointError):
    """The loss or the gradient became inf/nan; nothing was saved."""


def train_step_prm(*, base_spec, items, out_dir, learning_rate=2e-5, epochs=1, batch_size=4, max_length=512,
                   seed=0, step_separator=DEFAULT_SEPARATOR, grad_accum=1, progress=None, stop=None) -> dict:
    """Train a 3-class step head (plus backbone) on `items` and save it to `out_dir`; return the run's figures.

    items: (problem, steps, ratings) triples; ratings has one -1/0/+1 (or a float soft target) or None per step.
    progress(step, total_steps, loss): called after each optimizer step; an exception it raises aborts.
    stop(): checked before each optimizer step; truthy ends the run with TrainingStopped.
    """
    _check_hyperparameters(learning_rate, epochs, batch_size, max_length, grad_accum)
    items = _check_items(items)
    out = Path(out_dir)
    if out.exists():
        raise ValueError(f"out_dir {out} already exists")

    import torch

    from workers.ml.device import pick_device

    device, compute_dtype = pick_device()
    torch.manual_seed(seed)  # the new head's initialisation
    model, tokenizer = _load(base_spec)
    model.to(device)
    prm = StepPRM(model, tokenizer, step_separator=step_separator, device=device)
    examples, truncated = build_examples(prm, items, max_length)
    if not examples:
        raise ValueError(f"items: every labeled step lies past max_length={max_length}")

    curve, step_tokens, step, seconds = optimize(
        model, examples, lambda batch: micro_batch_loss(model, batch, prm.pad_id, device, causal=prm.causal),
        device=device, learning_rate=learning_rate, epochs=epochs, batch_size=batch_size, seed=seed,
        grad_accum=grad_accum, progress=progress, stop=stop)
    model.config.step_separator = step_separator  # kept in config.json so a loader can tell
    _save(model, tokenizer, out)
    counts, soft = [0] * len(LABELS), 0
    for _, targets in examples:
        for _, label in targets:
            if isinstance(label, tuple):
                soft += 1
            else:
                counts[label] += 1
    return {
        "loss_curve": curve,
        "step_tokens": step_tokens,
        "steps": step,
        "items": len(examples),
        "labeled_steps": sum(counts) + soft,
        "label_counts": dict(zip(LABELS, counts)),
        "soft_targets": soft,
        "truncated_steps": truncated,
        "tokens": sum(step_tokens),
        "seconds": seconds,
        "tokens_per_second": sum(step_tokens) / seconds if seconds > 0 else 0.0,
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": device,
        "dtype": str(compute_dtype).removeprefix("torch."),
        "base_spec": str(base_spec),
        "out_dir": str(out),
        "learning_rate": learning_rate,
        "epochs": epochs,
        "batch_size": batch_size,
        "grad_accum": grad_accum,
        "max_length": max_length,
        "seed": seed,
        "step_separator": step_separator,
    }


def optimize(model, examples, summed_loss, *, device, learning_rate, epochs, batch_size, seed, grad_accum=1,
             progress=None, stop=None):
    """The training loop every head trained here shares (the step-head PRM, the ORM): AdamW, length-bucketed
    shuffled batches, gradient accumulation over `grad_accum` batches, the loss averaged over the labels of an
    optimizer step, gradient clipping, a divergence check, bf16 autocast and gradient checkpointing on CUDA.

    examples: (token ids, [(position, label), ...]); summed_loss(batch) -> the loss summed over its labels.
    Returns (loss curve, tokens per step, optimizer steps, seconds)."""
    import torch

    cuda = device == "cuda"
    if cuda:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else nullcontext

    rng = random.Random(seed)
    n_batches = math.ceil(len(examples) / batch_size)
    per_epoch = math.ceil(n_batches / grad_accum)
    total_steps = epochs * per_epoch
    curve, step_tokens, step = [], [], 0
    t0 = time.perf_counter()
    for epoch in range(epochs):
        batches = _bucketed_batches(examples, batch_size, rng)
        for start in range(0, len(batches), grad_accum):
            if stop is not None and stop():
                raise TrainingStopped(f"stopped before optimizer step {step + 1} of {total_steps}")
            group = [[examples[i] for i in b] for b in batches[start:start + grad_accum]]
            n_labels = sum(len(targets) for batch in group for _, targets in batch)
            loss_sum, tokens = 0.0, 0
            for batch in group:
                with autocast():
                    loss = summed_loss(batch) / n_labels
                loss.backward()
                loss_sum = loss_sum + loss.detach()  # a tensor: no device sync per micro-batch
                tokens += sum(len(ids) for ids, _ in batch)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM))
            loss_sum = float(loss_sum)
            step += 1
            for what, value in (("loss", loss_sum), ("gradient norm", grad_norm)):
                if not math.isfinite(value):
                    raise TrainingDiverged(f"training diverged: {what} is {value} at optimizer step {step} of "
                                           f"{total_steps} (epoch {epoch + 1}); try a lower learning_rate "
                                           f"than {learning_rate:g}")
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            curve.append(loss_sum)
            step_tokens.append(tokens)
            if progress is not None:
                progress(step, total_steps, loss_sum)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    if cuda:
        model.gradient_checkpointing_disable()
    model.config.use_cache = True
    return curve, step_tokens, step, seconds


def build_examples(prm, items, max_length):
    """Encode with the scorer's own layout; return ([(input_ids, [(position, label), ...])], truncated).

    Items left with no labeled step (all None, or all cut off) are dropped.
    """
    encoded = prm._encode_batch([(problem, steps) for problem, steps, _ in items], max_length)
    examples, truncated = [], 0
    for (ids, positions), (_, _, ratings) in zip(encoded, items):
        targets = []
        for pos, rating in zip(positions, ratings):
            if rating is None:
                continue
            if pos is None:
                truncated += 1
            elif isinstance(rating, float):
                targets.append((pos, (1.0 - rating, 0.0, rating)))  # soft: a distribution over the classes
            else:
                targets.append((pos, rating + 1))
        if targets:
            examples.append((ids, targets))
    return examples, truncated


def micro_batch_loss(model, batch, pad_id, device, *, causal=True):
    """Summed cross-entropy over the labeled separator positions of one padded batch."""
    import torch

    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    rows, cols, labels = [], [], []
    for row, (ids, targets) in enumerate(batch):
        input_ids[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention[row, :len(ids)] = 1
        for pos, label in targets:
            rows.append(row)
            cols.append(pos)
            labels.append(label)
    # Right padding under a causal mask: no real token sees a pad, so decoders need no mask (see prm.py).
    mask = None if causal else attention.to(device)
    logits = model(input_ids=input_ids.to(device), attention_mask=mask).logits
    picked = logits[torch.tensor(rows, device=device), torch.tensor(cols, device=device)]
    if all(isinstance(label, int) for label in labels):
        target = torch.tensor(labels, device=device)
    else:  # soft targets: class probabilities, hard labels one-hot
        classes = picked.shape[-1]
        target = torch.tensor([label if isinstance(label, tuple) else [float(c == label) for c in range(classes)]
                               for label in labels], dtype=torch.float32, device=device)
    return torch.nn.functional.cross_entropy(picked.float(), target, reduction="sum")


def _bucketed_batches(examples, batch_size, rng):
    order = list(range(len(examples)))
    rng.shuffle(order)
    window = batch_size * BUCKET_BATCHES
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: len(examples[i][0]))
        batches.extend(chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def _check_hyperparameters(learning_rate, epochs, batch_size, max_length, grad_accum):
    def whole(name, value, least):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")

    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) \
            or not math.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    whole("epochs", epochs, 1)
    whole("batch_size", batch_size, 1)
    whole("grad_accum", grad_accum, 1)
    whole("max_length", max_length, 16)


def _check_items(items):
    items = list(items)
    labeled = 0
    for n, item in enumerate(items):
        try:
            problem, steps, ratings = item
        except (TypeError, ValueError):
            raise ValueError(f"items[{n}]: expected (problem, steps, ratings)") from None
        if len(ratings) != len(steps):
            raise ValueError(f"items[{n}]: {len(steps)} steps but {len(ratings)} ratings")
        bad = [r for r in ratings if r is not None and (isinstance(r, bool) or r not in (-1, 0, 1))
               and not (isinstance(r, float) and 0.0 <= r <= 1.0)]
        if bad:
            raise ValueError(f"items[{n}]: ratings must be -1, 0, 1, a soft target in [0, 1] or None, got {bad[0]!r}")
        labeled += sum(r is not None for r in ratings)
    if not labeled:
        raise ValueError("items: no labeled step (every rating is None, or no items)")
    return items


def _load(base_spec):
    import torch

    from workers.ml.prm import load_token_classifier
    from workers.ml.sources import resolve

    path, gguf_file = resolve(base_spec)
    return load_token_classifier(path, gguf_file, torch.float32)


def _save(model, tokenizer, out):
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if out.exists():  # os.rename would silently replace an empty folder made meanwhile
            raise FileExistsError(f"out_dir {out} appeared during training")
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
