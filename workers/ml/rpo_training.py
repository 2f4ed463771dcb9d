"""Iterative RPO (Pang et al. 2024, "Iterative Reasoning Preference Optimization"): one iteration trains the
generator on pairs of its own solutions to one problem, a correct one chosen and a wrong one rejected,
with DPO plus an NLL term on the chosen solution.

The loss is TRL's DPOTrainer (trl==0.29.1, the newest release whose dependencies fit this project's pins):
`DPOConfig(loss_type=["sigmoid", "sft"], loss_weights=[1.0, alpha])`, i.e. the DPO sigmoid loss with
temperature `beta` plus `alpha` times the chosen solution's token-averaged negative log-likelihood. The
reference model is a frozen copy of the starting model, as in the paper (each iteration's reference is
the model the iteration starts from).

A pair's prompt is the generator's own: the message of labeling.core.prompts wrapped exactly as
workers.ml.generator.build_prompt wraps it when sampling. With a chat template the rows are
conversational (TRL applies the template: user message, then the solution as the assistant's turn, its
end token included); without one they are the plain prompt text and the solution, to which TRL adds the
end token. So the trainer sees the token sequences the generator produced.

Nothing is written unless training finishes: the model is saved into a hidden temp folder beside
`out_dir` and renamed into place.
"""
import copy
import math
import shutil
import tempfile
import time
from pathlib import Path

from workers.ml.generator import has_chat_template, wrap_message


class TrainingDiverged(FloatingPointError):
    """The loss became inf/nan; nothing was saved."""


def dpo_rows(tokenizer, pairs):
    """TRL rows from pairs {"prompt": message, "chosen": text, "rejected": text} (see the module docstring)."""
    if has_chat_template(tokenizer):
        def turn(role, text):
            return [{"role": role, "content": text}]
        return [{"prompt": turn("user", p["prompt"]), "chosen": turn("assistant", p["chosen"]),
                 "rejected": turn("assistant", p["rejected"])} for p in pairs]
    return [{"prompt": wrap_message(tokenizer, p["prompt"]), "chosen": p["chosen"], "rejected": p["rejected"]}
            for p in pairs]


def check_hyperparameters(*, steps, beta, alpha, learning_rate, batch_size, grad_accum, max_length):
    for name, value, least in (("steps", steps, 1), ("batch_size", batch_size, 1), ("grad_accum", grad_accum, 1),
                               ("max_length", max_length, 16)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
    for name, value, zero_ok in (("beta", beta, False), ("alpha", alpha, True),
                                 ("learning_rate", learning_rate, False)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value < 0 or (value == 0 and not zero_ok):
            raise ValueError(f"{name} must be a finite number {'>=' if zero_ok else '>'} 0, got {value!r}")


def train_rpo(*, base_spec, pairs, out_dir, steps=10, beta=0.1, alpha=1.0, learning_rate=1e-6, batch_size=2,
              grad_accum=1, max_length=1024, seed=0, progress=None) -> dict:
    """Train `base_spec` on `pairs` for `steps` optimizer steps and save it to `out_dir`; return the run's figures.

    progress(step, total_steps, loss): called after each optimizer step; an exception it raises aborts.
    """
    check_hyperparameters(steps=steps, beta=beta, alpha=alpha, learning_rate=learning_rate, batch_size=batch_size,
                          grad_accum=grad_accum, max_length=max_length)
    pairs = [p for p in pairs if p.get("chosen") and p.get("rejected")]
    if not pairs:
        raise ValueError("no preference pairs to train on (a problem needs a correct and a wrong solution)")
    out = Path(out_dir)
    if out.exists():
        raise ValueError(f"out_dir {out} already exists")

    import datasets
    import torch
    import trl
    from transformers import PrinterCallback, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    from workers.ml.device import pick_device
    from workers.ml.loading import load_causal_lm, load_tokenizer

    datasets.disable_progress_bars()
    device, _ = pick_device()
    cuda = device == "cuda"
    torch.manual_seed(seed)
    model = load_causal_lm(base_spec, torch.float32, device)  # fp32 master weights; bf16 autocast on CUDA
    # The reference: a frozen copy of the starting weights (TRL would reload it from the model's folder,
    # which a GGUF spec does not have).
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    tokenizer = load_tokenizer(base_spec)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset = datasets.Dataset.from_list(dpo_rows(tokenizer, pairs))

    curve, history, seen_tokens = [], [], []

    class Record(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                loss = float(logs["loss"])
                if not math.isfinite(loss):
                    raise TrainingDiverged(f"training diverged: loss is {loss} at optimizer step {state.global_step} "
                                           f"of {steps}; try a lower learning_rate than {learning_rate:g}")
                curve.append(loss)
                history.append({k: float(v) for k, v in logs.items() if isinstance(v, (int, float))})
                seen_tokens.append(int(logs.get("num_tokens", 0)))  # TRL's running count of unpadded tokens
                if progress is not None:
                    progress(state.global_step, steps, loss)

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        config = DPOConfig(
            output_dir=str(work / "trainer"), loss_type=["sigmoid", "sft"], loss_weights=[1.0, alpha], beta=beta,
            learning_rate=learning_rate, max_steps=steps, per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=grad_accum, max_length=max_length, seed=seed, data_seed=seed,
            logging_steps=1, save_strategy="no", report_to=[], disable_tqdm=True, use_cpu=not cuda, bf16=cuda,
            gradient_checkpointing=cuda, dataloader_num_workers=0, lr_scheduler_type="constant",
            max_grad_norm=1.0, remove_unused_columns=False)
        trainer = DPOTrainer(model=model, ref_model=reference, args=config, train_dataset=dataset,
                             processing_class=tokenizer, callbacks=[Record()])
        trainer.remove_callback(PrinterCallback)  # the curve goes to `progress` and the result, not stdout
        # Tokens through the policy per pair: prompt + chosen and prompt + rejected, each cut at max_length.
        lengths = [min(len(row["prompt_ids"]) + len(row["chosen_ids"]), max_length)
                   + min(len(row["prompt_ids"]) + len(row["rejected_ids"]), max_length)
                   for row in trainer.train_dataset.select_columns(["prompt_ids", "chosen_ids", "rejected_ids"])]
        t0 = time.perf_counter()
        output = trainer.train()
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        trainer.model.config.use_cache = True
        saved = work / "model"
        trainer.save_model(str(saved))
        tokenizer.save_pretrained(str(saved))
        saved.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    examples = steps * batch_size * grad_accum
    step_tokens = [b - a for a, b in zip([0] + seen_tokens, seen_tokens)]
    # TRL's count where it logs one; else pairs drawn evenly: examples seen x the mean
    tokens = sum(step_tokens) or round(examples * sum(lengths) / len(lengths))
    last = history[-1] if history else {}
    return {"loss_curve": curve, "steps": int(output.global_step), "pairs": len(pairs), "examples": examples,
            "epochs": round(examples / len(pairs), 3), "seconds": seconds, "tokens": tokens,
            "tokens_per_second": tokens / seconds, "device": device, "trl": trl.__version__,
            "parameters": sum(p.numel() for p in model.parameters()), "loss": "DPO sigmoid + alpha * NLL(chosen)",
            "beta": beta, "alpha": alpha, "learning_rate": learning_rate, "batch_size": batch_size,
            "grad_accum": grad_accum, "max_length": max_length, "seed": seed,
            "chat_template": has_chat_template(tokenizer),
            "step_tokens": step_tokens,
            "last_log": {k: v for k, v in last.items() if k.startswith(("rewards/", "logps/", "loss"))}}

