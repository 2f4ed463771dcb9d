"""The generator's prompt template: what a sampling worker asks the model, and what its preference pairs
are trained on (iterative RPO), so a pair's prompt is the text its solutions were sampled from.

Django-free and torch-free: workers.ml.generator wraps the message in the tokenizer's chat template (or
the plain layout below when the tokenizer has none); labeling.services.data.generator_pairs writes the
message into each pair and the template's id and text into the export's provenance.
"""
TEMPLATE_ID = "stepwise-math-v1"
INSTRUCTION = (
    "Solve the following math problem step by step. Write one step per paragraph, with a blank line "
    "between steps. When you are done, write a line \"# Answer\", then a blank line, then the final "
    "answer alone.\n\nProblem: {problem}"
)
# Without a chat template the model continues this text.
PLAIN_LAYOUT = "{message}\n\nSolution:\n"


def generator_message(problem: str) -> str:
    """The one user message a problem becomes."""
    return INSTRUCTION.format(problem=problem.strip())


def plain_prompt(message: str) -> str:
    return PLAIN_LAYOUT.format(message=message)
