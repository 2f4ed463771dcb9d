"""Import boundaries, each checked in a fresh Python process: the core and the ML code import no Django,
and the web process (URLs, admin, tasks, an admin `hf` export in the embedded mode) imports no torch."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WALK = """
import importlib, json, pkgutil, sys
import labeling.core, workers.ml
imported = []
for package in (labeling.core, workers.ml):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
        imported.append(info.name)
print(json.dumps({"imported": imported, "modules": sorted(sys.modules)}))
"""

WEB = """
import json, sys
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
import annotate.urls
from django.contrib import admin
from django.urls import get_resolver
get_resolver().url_patterns, admin.site.get_urls()
import workers.tasks
from django.contrib.auth.models import User
from django.test import Client
from labeling.models import Export
from labeling.services.data.prm800k_import import prm800k_import
prm800k_import(path=sys.argv[1])
client = Client()
client.force_login(User.objects.create_superuser("admin", password="admin-pw"))
response = client.post("/admin/labeling/export/add/", {"format": "hf", "neutral": "negative"})
export = Export.objects.get()
print(json.dumps({"response": response.status_code, "export": [export.format, export.status, export.record_count,
                                                               export.error],
                  "modules": sorted(sys.modules)}))
"""

# One PRM800K line: a phase-2 solution whose first step is fine and second wrong.
LINE = {"labeler": "0c4a3d5e-1111-4c1b-9a51-3b5e1c2d7f01", "timestamp": "2023-01-01T00:00:00.000001",
        "generation": 1, "is_quality_control_question": False, "is_initial_screening_question": False,
        "question": {"problem": "What is $1+1$?", "ground_truth_solution": None, "ground_truth_answer": "2",
                     "pre_generated_steps": ["One plus one.", "It is 3.\n\n# Answer\n\n3"],
                     "pre_generated_answer": "3", "pre_generated_verifier_score": 0.5},
        "label": {"steps": [{"completions": [{"text": "One plus one.", "rating": 1, "flagged": False}],
                             "chosen_completion": 0, "human_completion": None},
                            {"completions": [{"text": "It is 3.\n\n# Answer\n\n3", "rating": -1, "flagged": False}],
                             "chosen_completion": None, "human_completion": None}],
                  "total_time": 1000, "finish_reason": "found_error"}}


def run(script, *args, env):
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def clean_env(**extra):
    drop = {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CELERY_BROKER_URL", "TEST_DATABASE_NAME", "USE_TORCH",
            "USE_TF", "USE_JAX"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def foreign(modules, allowed):
    """Modules of Django, torch or transformers, and of this project outside the `allowed` packages."""
    def inside(m, package):
        return m == package or m.startswith(package + ".")
    return sorted(m for m in modules if m.split(".")[0] in ("django", "torch", "transformers")
                  or (m.startswith(("labeling.", "workers.")) and not any(inside(m, p) for p in allowed)))


def test_it_keeps_django_out_of_the_core_and_the_ml_code():
    result = run(WALK, env=clean_env())
    assert {"labeling.core.grading", "labeling.core.sympy_worker", "workers.ml.prm",
            "workers.ml.generator"} <= set(result["imported"])
    # workers.ml may use the core (and its errors), nothing else of labeling; torch waits for a model.
    assert foreign(result["modules"], ("labeling.core", "labeling.errors", "workers.ml")) == []


def test_the_web_process_never_imports_torch_even_for_an_hf_export(tmp_path):
    data = tmp_path / "labels.jsonl"
    data.write_text(json.dumps(LINE) + "\n")
    env = clean_env(DJANGO_SETTINGS_MODULE="annotate.settings", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
                    MEDIA_ROOT=str(tmp_path / "media"), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1",
                    HF_DATASETS_CACHE=str(tmp_path / "hf-cache"))
    result = run(WEB, data, env=env)
    assert result["response"] == 302
    assert result["export"] == ["hf", "done", 1, ""]
    assert "workers.tasks" in result["modules"]
    assert [m for m in result["modules"] if m.split(".")[0] in ("torch", "transformers")] == []
