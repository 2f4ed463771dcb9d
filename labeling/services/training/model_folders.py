"""What a training job leaves on disk: its model folder and the trainer's temporary folders beside it."""
import shutil
from pathlib import Path

from labeling.models import ModelVersion


def remove_unregistered(out: Path) -> None:
    """Remove `out` and the trainer's temporary folders (`.<name>.*.tmp` beside it), unless a version was
    registered from `out`: a job taken over from a lost worker starts clean, a registered model stays."""
    out = Path(out)
    if ModelVersion.objects.filter(path=str(out)).exists():
        return
    shutil.rmtree(out, ignore_errors=True)
    if out.parent.is_dir():
        for tmp in out.parent.glob(f".{out.name}.*.tmp"):
            shutil.rmtree(tmp, ignore_errors=True)
