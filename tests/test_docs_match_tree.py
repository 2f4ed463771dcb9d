"""README's "What is here" table and docs/architecture.md name every module and room, and nothing that is gone."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE = ("annotate", "labeling", "workers")


def modules():
    for package in CODE:
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT)
            if path.name == "__init__.py" or "migrations" in rel.parts or "commands" in rel.parts:
                continue
            yield rel


def test_the_architecture_page_names_every_module_in_its_room():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    sections = re.split(r"^### ", doc, flags=re.M)
    missing = []
    for rel in modules():
        room = "/".join(rel.parts[:-1])
        # A room's own section; views, api and admin share one; services/<group>/ sit under labeling/services/.
        section = next((s for s in sections if f"`{room}/`" in s.splitlines()[0]), None)
        if section is None:
            parent = "/".join(rel.parts[:-2])
            section = next((s for s in sections if f"`{parent}/`" in s.splitlines()[0]), "")
        if f"`{rel.name}`" not in section and f"{rel.name}`" not in section:
            missing.append(str(rel))
    assert not missing, f"docs/architecture.md does not list: {missing}"


def test_the_architecture_page_names_no_module_that_is_gone():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"(?<![\w*])([a-z][a-z_0-9]*\.py)\b", doc))
    present = {p.name for package in CODE for p in (ROOT / package).rglob("*.py")}
    present |= {p.name for p in (ROOT / "tests").glob("*.py")}
    assert named <= present, f"docs/architecture.md names modules that do not exist: {sorted(named - present)}"


def test_the_readme_table_names_every_room():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## What is here", 1)[1].split("\n## ", 1)[0]
    rooms = [f"{p.relative_to(ROOT)}/" for package in ("labeling", "workers") for p in (ROOT / package).iterdir()
             if p.is_dir() and p.name not in ("__pycache__", "migrations", "static", "management")]
    rooms += [f"{p.relative_to(ROOT)}/" for p in (ROOT / "labeling" / "services").iterdir()
              if p.is_dir() and p.name != "__pycache__"]
    missing = [room for room in rooms if f"`{room}`" not in table]
    assert not missing, f"README's table does not list: {missing}"
    for named in re.findall(r"`([a-z_/]+/)`", table):
        assert (ROOT / named).is_dir(), f"README's table names {named}, which does not exist"
