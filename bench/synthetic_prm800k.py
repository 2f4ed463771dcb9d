"""A deterministic (seeded) synthetic PRM800K file for bench/import_export.py: phase-2 records (one
annotation per distinct pre-generated solution, ~N/8 problems, ~10 rated steps each, found_error records
with alternative completions at the error step) and N/20 phase-1 records with human_completion objects."""
import datetime as dt
import json
import random
import uuid

SEED = 800_000

WORDS = ("the", "so", "we", "have", "that", "is", "of", "and", "to", "a", "by", "this", "gives", "which",
         "means", "now", "then", "let's", "find", "value", "equation", "both", "sides", "multiply", "divide",
         "subtract", "add", "number", "sum", "product", "integer", "root", "factor", "term", "terms",
         "simplify", "substitute", "notice", "since", "therefore", "remainder", "digits", "ways", "choose",
         "triangle", "angle", "area", "radius", "circle", "side", "length", "probability", "expression",
         "coefficient", "polynomial", "solve", "for", "check", "answer", "case", "first", "second", "last",
         "I", "need", "can", "use", "formula", "get", "plug", "in", "into", "equal", "positive", "negative")
LATEX = ("$x^2 + 3x - 4 = 0$", "$\\frac{3}{4}$", "$\\sqrt{17}$", "$\\pi r^2$", "$\\sin \\theta$",
         "$a_n = a_1 + (n-1)d$", "$\\binom{10}{3} = 120$", "$2^{10} = 1024$", "$\\frac{x+1}{x-1}$",
         "$\\left(\\frac{1}{2}\\right)^3$", "$\\log_2 8 = 3$", "$\\angle ABC = 90^\\circ$",
         "$\\dfrac{\\sqrt{3}}{2}$", "$|z| = \\sqrt{a^2+b^2}$", "$\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}$",
         "$f(x) = 3x^3 - 2x$", "$\\$1.24$", "$5! = 120$", "$\\cos^2 x + \\sin^2 x = 1$", "$x \\equiv 3 \\pmod 7$")
# Non-ASCII appears now and then (json.dumps writes it as \u escapes; one needs a surrogate pair).
UNICODE = ("caf\u00e9", "90\u00b0", "\u2013", "\u03c0", "\u2264", "\u221a2", "\u2026", "\u00d7", "\U0001F600")
ANSWERS = ("28800", "\\frac{3}{4}", "12", "\\sqrt{17}", "2\\pi", "-5", "(1, 2)", "\\text{(C)}", "0.29", "7",
           "1024", "\\dfrac{\\sqrt{3}}{2}", "90^\\circ", "3, 5", "120")


class Gen:
    """Deterministic synthetic PRM800K records."""

    def __init__(self, seed, records):
        self.rng = random.Random(seed)
        rng = self.rng
        self.phrases = [self._phrase(rng.randint(6, 12)) for _ in range(3000)]
        self.labelers = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(300)]
        nproblems = max(8, records // 8)  # ~12,500 problems for 100,000 solutions
        self.problems = []
        for i in range(nproblems):
            answer = rng.choice(ANSWERS)
            if rng.random() < 0.03:
                answer += " " + rng.choice(UNICODE)
            self.problems.append({
                "problem": f"Problem {i}: " + self._text(rng.randint(120, 400)),
                "ground_truth_solution": self._text(rng.randint(250, 900)) + f" $\\boxed{{{answer}}}$.",
                "ground_truth_answer": answer,
                "generation": rng.randint(1, 10),
            })
        # A few screening problems with no ground truth at all (PRM800K has one).
        self.screening = [{"problem": f"Screening {i}: " + self._text(200), "ground_truth_solution": None,
                           "ground_truth_answer": None, "generation": -1} for i in range(3)]
        self.start = dt.datetime(2022, 7, 1)

    def _phrase(self, n):
        rng = self.rng
        words = [rng.choice(WORDS) for _ in range(n)]
        if rng.random() < 0.6:
            words.insert(rng.randrange(len(words)), rng.choice(LATEX))
        if rng.random() < 0.02:
            words.append(rng.choice(UNICODE))
        return " ".join(words)

    def _text(self, length):
        parts, size = [], 0
        while size < length:
            p = self.rng.choice(self.phrases)
            parts.append(p)
            size += len(p) + 2
        return ". ".join(parts).capitalize() + "."

    def _step(self, tag):
        """A step of ~100-200 characters, unique through its tag."""
        rng = self.rng
        return f"{rng.choice(self.phrases).capitalize()}, {rng.choice(self.phrases)} (step {tag})."

    def _timestamp(self, i):
        moment = self.start + dt.timedelta(seconds=i * 97 + self.rng.randint(0, 90),
                                           microseconds=self.rng.randint(0, 999_999))
        return moment.isoformat()

    def phase2(self, i):
        rng = self.rng
        screening = rng.random() < 0.001
        p = rng.choice(self.screening) if screening else rng.choice(self.problems)
        n = rng.randint(7, 17)
        answer = rng.choice(ANSWERS) if rng.random() < 0.93 else None
        steps = [self._step(f"{i}.{k}") for k in range(n)]
        if answer is not None:
            steps[-1] += f"\n\n# Answer\n\n{answer}"
        roll = rng.random()
        finish = ("found_error" if roll < 0.52 else "solution" if roll < 0.92 else
                  "give_up" if roll < 0.96 else "bad_problem")
        if finish == "found_error":
            rated = rng.randint(max(2, n // 2), n)
        elif finish == "solution":
            rated = n
        else:
            rated = rng.randint(1, n)
        label = []
        for k in range(rated):
            last = k == rated - 1
            if finish == "found_error" and last:
                comps = [{"text": steps[k], "rating": -1, "flagged": None}]
                for a in range(rng.randint(0, 4)):  # alternatives the labeler was shown at the error step
                    comps.append({"text": self._step(f"{i}.{k}.alt{a}"), "rating": rng.choice((-1, 0, 1, 1)),
                                  "flagged": False})
                label.append({"completions": comps, "human_completion": None, "chosen_completion": None})
            else:
                rating = 1 if rng.random() < 0.8 else 0
                label.append({"completions": [{"text": steps[k], "rating": rating, "flagged": None}],
                              "human_completion": None, "chosen_completion": 0})
        score = rng.random() ** 6
        if rng.random() < 0.01:
            score = 1e-07
        return {
            "labeler": rng.choice(self.labelers),
            "timestamp": self._timestamp(i),
            "generation": p["generation"],
            "is_quality_control_question": rng.random() < 0.02,
            "is_initial_screening_question": screening,
            "question": {"problem": p["problem"], "ground_truth_solution": p["ground_truth_solution"],
                         "ground_truth_answer": p["ground_truth_answer"], "pre_generated_steps": steps,
                         "pre_generated_answer": answer, "pre_generated_verifier_score": score},
            "label": {"steps": label, "total_time": rng.randint(20_000, 2_000_000) if rng.random() < 0.98 else None,
                      "finish_reason": finish},
        }

    def phase1(self, i):
        rng = self.rng
        p = rng.choice(self.problems)
        finish = "solution" if rng.random() < 0.8 else "give_up"
        label = []
        for k in range(rng.randint(4, 16)):
            if rng.random() < 0.3:  # the labeler rated several candidates and wrote their own step
                comps = [{"text": self._step(f"p1.{i}.{k}.{c}"), "rating": rng.choice((-1, 0, 1, None)),
                          "flagged": False} for c in range(rng.randint(2, 7))]
                if rng.random() < 0.5:
                    human = {"text": self._step(f"p1.{i}.{k}.h"), "rating": None, "source": "human",
                             "flagged": False}
                    label.append({"completions": comps, "human_completion": human, "chosen_completion": None})
                else:
                    label.append({"completions": comps, "human_completion": None,
                                  "chosen_completion": rng.randrange(len(comps))})
            else:
                label.append({"completions": [{"text": self._step(f"p1.{i}.{k}"), "rating": 1, "flagged": False}],
                              "human_completion": None, "chosen_completion": 0})
        if finish == "give_up" and rng.random() < 0.5:
            label.append({"completions": None, "human_completion": None, "chosen_completion": None})
        return {
            "labeler": rng.choice(self.labelers),
            "timestamp": self._timestamp(i),
            "generation": None,
            "is_quality_control_question": rng.random() < 0.05,
            "is_initial_screening_question": False,
            "question": {"problem": p["problem"], "ground_truth_answer": p["ground_truth_answer"]},
            "label": {"steps": label, "total_time": rng.randint(20_000, 3_000_000), "finish_reason": finish},
        }


def generate(path, records, seed=SEED):
    """Write `records` phase-2 lines and records//20 phase-1 lines (interleaved); return counts."""
    gen = Gen(seed, records)
    stats = {"annotations": 0, "phase1": 0, "phase2": 0, "steps": 0, "completions": 0, "bytes": 0}
    with open(path, "wb") as fh:
        for i in range(records):
            recs = [gen.phase2(i)]
            if i % 20 == 10:
                recs.insert(0, gen.phase1(i))
            for r in recs:
                data = (json.dumps(r) + "\n").encode()
                fh.write(data)
                stats["bytes"] += len(data)
                stats["annotations"] += 1
                stats["phase2" if "pre_generated_steps" in r["question"] else "phase1"] += 1
                stats["steps"] += len(r["label"]["steps"])
                stats["completions"] += sum(len(s["completions"] or ()) for s in r["label"]["steps"])
    stats["problems"] = len(gen.problems)
    return stats
