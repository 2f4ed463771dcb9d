"""The Django admin, one module per surface; importing the package registers every model admin."""
from labeling.admin import data, retrain, rounds  # noqa: F401
