"""Problems with graded candidate solutions, and a tiny step-head selector registered as active."""
from labeling.models import ModelVersion, Problem, Solution
from labeling.services.rounds.registry import model_version_register, selector_activate

WORDS = "let x be the number of apples then so we check compute the sum since hence step one two".split()


def make_candidates(n_problems=3, per_problem=6, wrong_every=2, prefix="p"):
    """n problems, each with `per_problem` graded solutions; every `wrong_every`-th one is wrong."""
    problems = []
    for p in range(n_problems):
        problem = Problem.objects.create(text=f"{prefix}{p}: what is {p} + {p}?", answer=str(2 * p),
                                         source_id=f"{prefix}/{p}", split="train")
        rows = []
        for k in range(per_problem):
            wrong = k % wrong_every == 0
            answer = str(2 * p + (1 if wrong else 0))
            steps = [" ".join(WORDS[(p + k + i) % len(WORDS)] for i in range(3 + (k + j) % 5))
                     for j in range(1 + k % 4)] + [f"so the answer is {answer}\n\n# Answer\n\n{answer}"]
            rows.append(Solution(problem=problem, steps=steps, steps_hash=Solution.hash_steps(steps),
                                 final_answer=answer, is_correct=not wrong, graded_mode="prm800k",
                                 generator="test"))
        Solution.objects.bulk_create(rows)
        problems.append(problem)
    return problems


def register_selector(path, name="tiny-step-prm", activate=True) -> ModelVersion:
    version = model_version_register(name=name, kind=ModelVersion.Kind.PRM, path=str(path), base_model="tiny",
                                     how_made="random tiny model for tests", config={"architecture": "step_head"})
    return selector_activate(version=version) if activate else version
