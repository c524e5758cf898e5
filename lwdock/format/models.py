"""What kind of model ``lwdock pack`` was given, found without loading or importing it.

A model file is never unpickled and a developer's module is never imported here (docs/security.md):
torch files are recognised by the member names of their zip archive, and a module by its syntax tree.

- ``sklearn``: a pickle or joblib file of a scikit-learn style model (estimator or Pipeline);
- ``torchscript``: a ``torch.jit.save`` archive (it carries its own code);
- ``torch-state``: a ``torch.save`` file (weights) with the module defining its network (``--module``);
- ``module``: the developer's wrapper module (``--module``), whose class follows the model contract.
"""

from __future__ import annotations

import ast
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import NotFoundError, PackageError, UsageError

SKLEARN, TORCHSCRIPT, TORCH_STATE, MODULE = "sklearn", "torchscript", "torch-state", "module"
KINDS = (SKLEARN, TORCHSCRIPT, TORCH_STATE, MODULE)
TORCH_SUFFIXES = (".pt", ".pth", ".jit", ".ts", ".ptc")
MAX_MODULE_BYTES = 4 * 2**20


@dataclass(frozen=True)
class ModelKind:
    """The kind, and for a module: the class lwdock instantiates (the wrapper, or the network)."""

    kind: str
    class_name: str | None = None


def torch_archive(path: Path) -> str | None:
    """``torchscript`` or ``torch-state`` for a torch zip archive (by its member names), else None."""
    try:
        if not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return None
    if any("/code/" in n or n.endswith("/constants.pkl") for n in names):
        return TORCHSCRIPT
    if any(n.endswith("/data.pkl") for n in names):
        return TORCH_STATE
    return None


@dataclass(frozen=True)
class _Class:
    name: str
    bases: tuple[str, ...]
    methods: frozenset[str]

    @property
    def is_network(self) -> bool:
        return any(b.split(".")[-1] == "Module" for b in self.bases)


def module_classes(path: Path) -> list[_Class]:
    """The top-level classes of a Python file, from its syntax tree (the file is not run)."""
    if not path.is_file():
        raise NotFoundError(f"no such module file: {path}")
    data = path.read_bytes()
    if len(data) > MAX_MODULE_BYTES:
        raise PackageError(f"{path.name} is {len(data)} bytes; a model module may have at most {MAX_MODULE_BYTES}")
    try:
        tree = ast.parse(data, filename=path.name)
    except (SyntaxError, ValueError) as exc:
        raise PackageError(f"{path.name} is not valid Python: {exc}") from None
    out = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            bases = tuple(ast.unparse(b) for b in node.bases)
            methods = frozenset(f.name for f in node.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)))
            out.append(_Class(node.name, bases, methods))
    return out


def detect(model_file: Path | None, module: Path | None, class_name: str | None = None) -> ModelKind:
    """The kind of model that ``model_file`` and/or ``module`` make, with the class to instantiate."""
    if model_file is not None and not model_file.is_file():
        raise NotFoundError(f"no such model file: {model_file}")
    archive = torch_archive(model_file) if model_file is not None else None
    if module is None:
        if model_file is None:
            raise UsageError("give the model (--model FILE) or a wrapper module (--module FILE)")
        if archive == TORCH_STATE or (archive is None and model_file.suffix.lower() in TORCH_SUFFIXES):
            raise UsageError(f"{model_file.name} holds torch weights (torch.save), not code",
                             hint="pass the module that defines the network with --module net.py, "
                                  "or save the model with torch.jit.save")
        return ModelKind(TORCHSCRIPT if archive == TORCHSCRIPT else SKLEARN)
    classes = module_classes(module)
    wrapper = _wrapper_class(classes, class_name)
    if wrapper is not None:
        return ModelKind(MODULE, wrapper)
    if model_file is not None and (archive == TORCH_STATE or model_file.suffix.lower() in TORCH_SUFFIXES):
        return ModelKind(TORCH_STATE, _network_class(classes, class_name, module))
    raise UsageError(
        f"{module.name} defines no model class with a predict method"
        + (f" named {class_name!r}" if class_name else ""),
        hint="a wrapper module defines class Model with input_shape, output_shape and predict(X) "
             "(docs/packaging.md); a torch network module comes with its weights (--model weights.pt)")


def _wrapper_class(classes: list[_Class], class_name: str | None) -> str | None:
    with_predict = [c for c in classes if "predict" in c.methods]
    if class_name is not None:
        return class_name if any(c.name == class_name for c in with_predict) else None
    named = [c.name for c in with_predict if c.name == "Model"]
    if named:
        return named[0]
    return with_predict[0].name if len(with_predict) == 1 else None


def _network_class(classes: list[_Class], class_name: str | None, module: Path) -> str:
    if class_name is not None:
        if not any(c.name == class_name for c in classes):
            raise UsageError(f"{module.name} defines no class {class_name!r}")
        return class_name
    nets = [c.name for c in classes if c.is_network]
    if len(nets) != 1:
        raise UsageError(f"{module.name} defines {len(nets)} torch modules ({', '.join(nets) or 'none'}); "
                         "name the network class with --class-name")
    return nets[0]


def imported_packages(path: Path) -> set[str]:
    """Top-level package names a Python file imports (absolute imports only)."""
    tree = ast.parse(path.read_bytes(), filename=path.name)
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out
