"""The Django admin, one module per surface; importing the package registers every model admin once.

data: problems, solutions, annotations and their steps, tasks and assignments. annotators: people and
their quality scores. exports: label exports and their download link. rounds: starting and watching
rounds. jobs: long-running jobs and the retrain form. versions: model versions (the selector switch)
and verifier scores.
"""
from labeling.admin import annotators, data, exports, jobs, rounds, versions  # noqa: F401
