"""The learnware package format: parse and check an unpacked learnware.

See docs/format.md. Nothing here imports or runs learnware code: the yaml is
read with a bounded safe loader (``lwdock.format.safeyaml``: no anchors or
aliases, capped size and depth) and every path it names must stay inside the
package. Statistical specification classes are looked up in a fixed table of
known types; unlike the reference, a package cannot make the dock import a
module of its choice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import PackageError
from ..spec.registry import SPEC_KINDS  # class name -> kind; the reference's names and ours
from .archive import YAML_NAME, Limits, extract

MAX_TEXT_BYTES = 256 * 1024  # the same bound as the YAML reader's (safeyaml.MAX_BYTES)
SEMANTIC_FILE = "semantic_specification.json"
REQUIREMENTS_FILE = "requirements.txt"
ENVIRONMENT_FILE = "environment.yaml"

SPEC_MODULES = {"learnware.specification", "lwdock.spec", "lwdock"}


@dataclass
class StatSpecEntry:
    kind: str
    class_name: str
    file_name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Package:
    root: Path
    model_class: str
    model_module: str
    model_kwargs: dict[str, Any]
    stat_specs: list[StatSpecEntry]
    requirements: list[str]
    semantic: dict[str, Any] | None
    name: str | None = None

    def spec_path(self, kind: str = "table") -> Path | None:
        for s in self.stat_specs:
            if s.kind == kind:
                return self.root / s.file_name
        return None


def _inside(root: Path, rel: Any, what: str) -> str:
    if not isinstance(rel, str) or not rel.strip():
        raise PackageError(f"learnware.yaml: {what} must be a relative file path, got {rel!r}")
    p = PurePosixPath(rel.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or (len(rel) > 1 and rel[1] == ":"):
        raise PackageError(f"learnware.yaml: {what} {rel!r} points outside the package")
    full = (root / p).resolve()
    if not full.is_relative_to(root.resolve()):
        raise PackageError(f"learnware.yaml: {what} {rel!r} points outside the package")
    if full.is_symlink() or not full.is_file():
        raise PackageError(f"learnware.yaml: {what} {rel!r} is missing from the package")
    return str(p)


def _read_yaml(root: Path) -> dict[str, Any]:
    from . import safeyaml  # PyYAML only when a package is read: `lwdock list` opens the dock without it

    doc = safeyaml.load((root / YAML_NAME).read_bytes(), YAML_NAME)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise PackageError(f"{YAML_NAME} must be a mapping at the top level")
    return doc


def _plain(value: Any, what: str) -> Any:
    """``value`` as JSON data (tuples become lists): the worker receives it as a JSON file."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise PackageError(f"{YAML_NAME}: {what} must hold only strings, numbers, booleans, null, lists and "
                           f"mappings with string keys ({exc})") from None


def _requirements(root: Path) -> list[str]:
    req = root / REQUIREMENTS_FILE
    env = root / ENVIRONMENT_FILE
    lines: list[str] = []
    if req.is_file():
        raw = req.read_bytes()
        if len(raw) > MAX_TEXT_BYTES:
            raise PackageError(f"{REQUIREMENTS_FILE} is {len(raw)} bytes; the limit is {MAX_TEXT_BYTES}")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:  # conda/pip on Windows often writes UTF-16
                text = raw.decode("utf-16", errors="strict")
            except UnicodeDecodeError:
                raise PackageError(f"{REQUIREMENTS_FILE} is neither UTF-8 nor UTF-16 text") from None
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("-"):
                raise PackageError(
                    f"{REQUIREMENTS_FILE}: option lines such as {line.split()[0]!r} are not allowed; list packages only"
                )
            lines.append(line)
    elif env.is_file():
        lines = _conda_requirements(env)
    return lines


def _conda_requirements(path: Path) -> list[str]:
    """pip requirements from a conda environment.yaml (conda pins become pip pins)."""
    raw = path.read_bytes()
    from . import safeyaml

    doc = safeyaml.load(raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw, ENVIRONMENT_FILE)
    if doc is not None and not isinstance(doc, dict):
        raise PackageError(f"{ENVIRONMENT_FILE} must be a mapping at the top level")
    deps = (doc or {}).get("dependencies") or []
    if not isinstance(deps, list):
        raise PackageError(f"{ENVIRONMENT_FILE}: 'dependencies' must be a list")
    out: list[str] = []
    for dep in deps:
        if isinstance(dep, dict):
            pip = dep.get("pip") or []
            if not isinstance(pip, list):
                raise PackageError(f"{ENVIRONMENT_FILE}: 'pip' must be a list")
            out.extend(str(d).strip() for d in pip)
        elif isinstance(dep, str):
            parts = dep.split("=")
            name = parts[0].strip()
            if name in ("python", "pip") or not name:
                continue
            out.append(f"{name}=={parts[1]}" if len(parts) > 1 and parts[1] else name)
    return out


def parse_package(root: Path) -> Package:
    """Parse the unpacked learnware at ``root``; raise PackageError on any problem."""
    root = Path(root)
    if not (root / YAML_NAME).is_file():
        raise PackageError(f"package has no {YAML_NAME}")
    doc = _read_yaml(root)
    class_name, module, kwargs = _model_section(root, doc)
    specs = _stat_specs(root, doc)
    semantic = _semantic(root, doc)
    name = doc.get("name")
    return Package(
        root=root,
        model_class=class_name,
        model_module=module,
        model_kwargs=kwargs,
        stat_specs=specs,
        requirements=_requirements(root),
        semantic=semantic,
        name=name if isinstance(name, str) else None,
    )


def _model_section(root: Path, doc: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(class name, module path, kwargs) of the yaml's ``model``."""
    model = doc.get("model", {}) or {}
    if not isinstance(model, dict):
        raise PackageError(f"{YAML_NAME}: 'model' must be a mapping")
    class_name = model.get("class_name", "Model")
    if not isinstance(class_name, str) or not class_name.isidentifier():
        raise PackageError(f"{YAML_NAME}: model.class_name {class_name!r} is not a Python class name")
    module = _inside(root, model.get("module_path", "__init__.py"), "model.module_path")
    if not module.endswith(".py"):
        raise PackageError(f"{YAML_NAME}: model.module_path {module!r} must be a .py file")
    kwargs = model.get("kwargs", {}) or {}
    if not isinstance(kwargs, dict):
        raise PackageError(f"{YAML_NAME}: model.kwargs must be a mapping")
    kwargs = _plain(kwargs, "model.kwargs")
    return class_name, module, kwargs


def _stat_specs(root: Path, doc: dict[str, Any]) -> list[StatSpecEntry]:
    entries = doc.get("stat_specifications")
    if entries is None:
        entries = [{"class_name": "RKMETableSpecification", "file_name": "stat_spec.json"}]
    if not isinstance(entries, list) or not entries:
        raise PackageError(f"{YAML_NAME}: 'stat_specifications' must be a non-empty list")
    specs = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise PackageError(f"{YAML_NAME}: stat_specifications[{i}] must be a mapping")
        cname = e.get("class_name")
        if cname not in SPEC_KINDS:
            raise PackageError(
                f"{YAML_NAME}: stat_specifications[{i}].class_name {cname!r} is not a known specification; "
                f"known: {', '.join(sorted(SPEC_KINDS))}"
            )
        mod = e.get("module_path", "learnware.specification")
        if mod not in SPEC_MODULES:
            raise PackageError(
                f"{YAML_NAME}: stat_specifications[{i}].module_path {mod!r} is not allowed "
                "(lwdock never imports specification code from a package)"
            )
        fname = _inside(root, e.get("file_name", "stat_spec.json"), f"stat_specifications[{i}].file_name")
        skw = e.get("kwargs", {}) or {}
        if not isinstance(skw, dict):
            raise PackageError(f"{YAML_NAME}: stat_specifications[{i}].kwargs must be a mapping")
        specs.append(StatSpecEntry(kind=SPEC_KINDS[cname], class_name=cname, file_name=fname, kwargs=skw))
    return specs


def _semantic(root: Path, doc: dict[str, Any]) -> dict[str, Any] | None:
    """The package's own semantic spec (not validated here), or None."""
    semantic = None
    sem_name = SEMANTIC_FILE
    sem_ref = doc.get("semantic_specification")
    if isinstance(sem_ref, dict) and sem_ref.get("file_name"):
        sem_name = _inside(root, sem_ref["file_name"], "semantic_specification.file_name")
    if (root / sem_name).is_file():
        try:
            semantic = json.loads((root / sem_name).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise PackageError(f"{sem_name} in the package is not valid UTF-8 JSON ({exc})") from None
    return semantic


def open_package(zip_path: Path, dest_dir: Path, *, limits: Limits | None = None) -> Package:
    """Safely extract ``zip_path`` into ``dest_dir`` (must not exist) and parse it."""
    extract(Path(zip_path), Path(dest_dir), limits)
    return parse_package(Path(dest_dir))
