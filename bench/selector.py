#!/usr/bin/env python
"""Does the round-0 selector learn? Held-out outcome AUROC of the implicit PRM on the demo data.

    .venv/bin/python bench/selector.py [--seed 0] [--splits 1] [--lr X] [--epochs N] [--beta X]
                                       [--trainable-layers K] [--limit N]

Data: labeling/demo/problems.jsonl and solutions.jsonl read directly (no database), each solution's
answer graded against its problem's with grade_answer(mode="fixed"), as rounds grade. Per split seed,
as the round-0 bootstrap does (labeling/services/rounds/bootstrap.py): problems are split with
split_for_validation (stratified by subject and level, STEPWISE_BOOTSTRAP_VALIDATION_FRACTION held out),
train_implicit_prm trains on up to STEPWISE_BOOTSTRAP_MAX_ITEMS of the train problems' solutions
(correct and wrong alternating) with the production settings, and the trained version is scored by its
production scorer (scorer_for: min_k sigmoid(q_k)) on the validation problems' solutions.

Printed, all measured in the same run on the same validation solutions: outcome AUROC with its DeLong
95% interval (labeling.core.intervals) of the trained selector, of the same model untrained (an implicit
PRM whose policy is its reference scores every solution 0.5, so AUROC 0.5 exactly), of the base model's
mean token log-prob of the solution (the meaningful untrained score), and of seeded random scores; the
trained selector's AUROC on its own training solutions (fits versus generalises); wall seconds; and
whether it beats chance, i.e. whether a round would activate it or fall back to random wrong answers.
Torch runs on 2 threads (the demo's CPU budget); the load average is printed, since a shared box slows it.
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

from bench.common import ROOT, django_setup  # noqa: E402

DEMO = ROOT / "labeling" / "demo"


def load_demo():
    """[(problem dict, solution dict, is_correct)] in file order, graded in fixed mode."""
    from labeling.core.grading import grade_answer

    problems = {p["unique_id"]: p for p in map(json.loads, (DEMO / "problems.jsonl").read_text().splitlines()) if p}
    rows = []
    for line in (DEMO / "solutions.jsonl").read_text().splitlines():
        if line.strip():
            s = json.loads(line)
            p = problems[s["unique_id"]]
            rows.append((p, s, grade_answer(s["answer"], p["answer"], mode="fixed")))
    return problems, rows


def alternating(rows, limit):
    """Correct and wrong alternating, at most `limit`: bootstrap.training_solution_ids on file order."""
    correct = [r for r in rows if r[2]][:limit]
    wrong = [r for r in rows if not r[2]][:limit]
    mixed = [r for pair in zip(correct, wrong) for r in pair]
    return (mixed + correct[len(wrong):] + wrong[len(correct):])[:limit]


def one_split(rows, problems, cfg, split_seed):
    from labeling.core.draws import Drawable, split_for_validation

    drawable = [Drawable(uid, p.get("subject", ""), p.get("level")) for uid, p in problems.items()]
    train_p, val_p = split_for_validation(drawable, fraction=cfg["fraction"], seed=split_seed)
    train_set, val_set = set(train_p), set(val_p)
    train = alternating([r for r in rows if r[0]["unique_id"] in train_set], cfg["max_items"])
    val = alternating([r for r in rows if r[0]["unique_id"] in val_set], cfg["max_items"])
    out = {"split_seed": split_seed, "train_problems": len(train_p), "val_problems": len(val_p),
           "train_n": len(train), "val_n": len(val), "val_correct": sum(r[2] for r in val)}
    with tempfile.TemporaryDirectory(prefix="selector-bench-") as tmp:
        out.update(train_and_score(train, val, cfg, Path(tmp) / "prm", split_seed))
    return out


def train_and_score(train, val, cfg, out_dir, split_seed):
    from labeling.core.intervals import auroc_interval
    from workers.ml.implicit_training import train_implicit_prm
    from workers.ml.scorers import scorer_for

    items = lambda rows: [(p["problem"], s["steps"]) for p, s, _ in rows]  # noqa: E731
    labels = lambda rows: [c for _, _, c in rows]  # noqa: E731
    t0 = time.perf_counter()
    result = train_implicit_prm(base_spec=cfg["base"], items=[(p["problem"], s["steps"], c) for p, s, c in train],
                                out_dir=out_dir, beta=cfg["beta"], learning_rate=cfg["lr"], epochs=cfg["epochs"],
                                batch_size=cfg["batch"], max_length=cfg["max_length"], seed=cfg["seed"],
                                trainable_layers=cfg["trainable_layers"] or None)
    train_s = time.perf_counter() - t0
    config = {"architecture": "implicit", "reference": cfg["base"], "beta": cfg["beta"], "score_how": "min"}

    def scores(scorer, rows):
        values = scorer.score(items(rows), batch_size=cfg["score_batch"], max_length=cfg["max_length"])
        return [scorer.solution_score(v) for v in values]

    def interval(values, rows):
        pairs = [(v, c) for v, c in zip(values, labels(rows)) if v is not None]  # None: unscorable
        return auroc_interval([v for v, _ in pairs], [c for _, c in pairs]), len(rows) - len(pairs)

    t0 = time.perf_counter()
    trained = scorer_for(path=str(out_dir), config=config)
    val_scores = scores(trained, val)
    score_s = time.perf_counter() - t0
    train_scores = scores(trained, train)
    mean_lp = mean_logprobs(trained.prm, items(val), cfg["max_length"])
    untrained = scorer_for(path=cfg["base"], config=config)  # policy is the reference: every r_k is 0
    untrained_scores = scores(untrained, val)
    rng = random.Random(cfg["seed"] * 1000 + split_seed)
    figures = {"trained": interval(val_scores, val), "trained, on its training set": interval(train_scores, train),
               "untrained implicit PRM": interval(untrained_scores, val),
               "base model mean token log-prob": interval(mean_lp, val),
               "random (seeded)": interval([rng.random() for _ in val], val)}
    return {"figures": figures, "train_seconds": train_s, "score_seconds": score_s,
            "loss_first": result["loss_curve"][0], "loss_last": result["loss_curve"][-1],
            "loss_curve": result["loss_curve"], "steps": result["steps"], "truncated": result["truncated"],
            "untrained_distinct": sorted({round(s, 9) for s in untrained_scores if s is not None})}


def mean_logprobs(prm, items, max_length):
    """The base model's mean log-prob per response token (problem excluded); None when a step was cut."""
    import torch

    from workers.ml.implicit_prm import token_logprobs

    out = []
    for ids, spans in prm.encode_spans(items, max_length):
        if not spans or None in spans:
            out.append(None)
            continue
        with torch.inference_mode():
            lp = token_logprobs(prm.reference, [ids], prm.pad_id, prm.device, prm.causal)[0]
        out.append(float(lp[spans[0][0]:spans[-1][1] + 1].mean()))
    return out


def fmt(entry):
    iv, unscorable = entry
    if iv is None:
        return "  n/a (one outcome class missing)"
    extra = f"  ({unscorable} unscorable)" if unscorable else ""
    return (f"{iv['auroc']:6.3f}  [{iv['low']:.3f}, {iv['high']:.3f}]  "
            f"n = {iv['n_positive']} correct / {iv['n_negative']} wrong{extra}")


def report(run, baseline="random (seeded)"):
    from labeling.core.intervals import beats_chance

    print(f"\nsplit seed {run['split_seed']}: train {run['train_problems']} problems / {run['train_n']} solutions, "
          f"validation {run['val_problems']} problems / {run['val_n']} solutions ({run['val_correct']} correct)")
    print(f"  training: {run['steps']} steps, loss {run['loss_first']:.3f} -> {run['loss_last']:.3f} "
          f"({run['train_seconds']:.0f} s, {run['truncated']} truncated); scoring validation {run['score_seconds']:.0f} s")
    print(f"  untrained implicit PRM score values: {run['untrained_distinct']}")
    base = run["figures"][baseline][0]
    for name, entry in run["figures"].items():
        other_set = name.endswith("training set")  # not the validation solutions: no comparison
        delta = "" if entry[0] is None or base is None or name == baseline or other_set else \
            f"   {entry[0]['auroc'] - base['auroc']:+.3f} vs random"
        print(f"  {name:<32}{fmt(entry)}{delta}")
    beats = beats_chance(run["figures"]["trained"][0])
    print(f"  beats chance (95% low end > 0.5): {beats} -> "
          + ("the round activates it" if beats else "the round falls back to random choice among wrong answers"))


def settings_config(args):
    django_setup()
    from django.conf import settings as s

    return {"base": s.STEPWISE_BOOTSTRAP_BASE, "max_items": s.STEPWISE_BOOTSTRAP_MAX_ITEMS,
            "beta": args.beta if args.beta is not None else s.STEPWISE_BOOTSTRAP_BETA,
            "lr": args.lr if args.lr is not None else s.STEPWISE_BOOTSTRAP_LR,
            "epochs": args.epochs if args.epochs is not None else s.STEPWISE_BOOTSTRAP_EPOCHS,
            "trainable_layers": (args.trainable_layers if args.trainable_layers is not None
                                 else s.STEPWISE_BOOTSTRAP_TRAINABLE_LAYERS),
            "batch": s.STEPWISE_BOOTSTRAP_BATCH, "max_length": s.STEPWISE_MAX_LENGTH,
            "fraction": getattr(s, "STEPWISE_BOOTSTRAP_VALIDATION_FRACTION", 0.3),
            "score_batch": s.STEPWISE_SCORING_BATCH, "seed": args.seed}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="first split seed; also the training seed")
    parser.add_argument("--splits", type=int, default=1, help="repeat over this many split seeds")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--beta", type=float)
    parser.add_argument("--trainable-layers", type=int, help="0 trains every layer")
    parser.add_argument("--limit", type=int, help="only this many problems (stratified draw), for a smoke run")
    args = parser.parse_args()

    import torch

    sys.stdout.reconfigure(line_buffering=True)  # each split's figures show as they come, even when piped
    torch.set_num_threads(2)
    cfg = settings_config(args)
    problems, rows = load_demo()
    if args.limit:
        from labeling.core.draws import Drawable, stratified_sample

        keep = set(stratified_sample([Drawable(u, p.get("subject", ""), p.get("level")) for u, p in problems.items()],
                                     args.limit, seed=args.seed))
        problems = {u: p for u, p in problems.items() if u in keep}
        rows = [r for r in rows if r[0]["unique_id"] in keep]
    print(f"demo: {len(problems)} problems, {len(rows)} solutions, {sum(r[2] for r in rows)} correct (fixed grading)")
    print("settings: " + ", ".join(f"{k}={v}" for k, v in cfg.items()))
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    runs = []
    for split_seed in range(args.seed, args.seed + args.splits):
        runs.append(one_split(rows, problems, cfg, split_seed))
        report(runs[-1])
    if len(runs) > 1:
        print(f"\nmean over {len(runs)} split seeds (AUROC; runs where a class was missing left out):")
        for name in runs[0]["figures"]:
            values = [r["figures"][name][0]["auroc"] for r in runs if r["figures"][name][0] is not None]
            wins = sum(1 for r in runs if name == "trained" and r["figures"][name][0] and r["figures"][name][0]["low"] > 0.5)
            print(f"  {name:<32}{sum(values) / len(values):6.3f}  over {len(values)}"
                  + (f"; beats chance in {wins} of {len(runs)}" if name == "trained" else ""))
        print(f"  training seconds (mean) {sum(r['train_seconds'] for r in runs) / len(runs):.0f}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
