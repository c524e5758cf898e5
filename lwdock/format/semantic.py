"""The semantic specification: the reference's schema, validated with helpful errors.

Format (as in the reference system)::
    {"Data": {"Type": "Class", "Values": ["Table"]},
     "Task": {"Type": "Class", "Values": ["Classification"]},
     "Library": {"Type": "Class", "Values": ["Scikit-learn"]},
     "Scenario": {"Type": "Tag", "Values": ["Business"]},
     "License": {"Type": "Class", "Values": ["MIT"]},
     "Name": {"Type": "String", "Values": "my model"},
     "Description": {"Type": "String", "Values": "what it does"},
     "Input": {"Dimension": 4, "Description": {"0": "sepal length", ...}},
     "Output": {"Dimension": 3, "Description": {"0": "setosa", ...}}}

For convenience a plain value (``"Data": "Table"``) is accepted and wrapped. This module
validates and builds specs; :class:`lwdock.records.Semantic` reads them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, SemanticSpecError
from ..records import CLASS_KEYS, STRING_KEYS, TAG_KEYS

CLASS_VALUES: dict[str, tuple[str, ...]] = {
    "Data": ("Table", "Image", "Text"),
    "Task": ("Classification", "Regression", "Feature Extraction", "Segmentation", "Object Detection", "Others"),
    "Library": ("Scikit-learn", "PyTorch", "TensorFlow", "Others"),
    "License": (
        "MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "GPL-2.0", "GPL-3.0", "LGPL-2.1", "LGPL-3.0",
        "AGPL-3.0", "ECL-2.0", "AFL-3.0", "CC-BY-4.0", "CC-BY-SA-4.0", "Others",
    ),
}  # fmt: skip
TAG_VALUES: dict[str, tuple[str, ...]] = {
    "Scenario": (
        "Business", "Financial", "Health", "Politics", "Computer", "Internet", "Traffic", "Nature", "Fashion",
        "Industry", "Agriculture", "Education", "Entertainment", "Architecture", "Others",
    ),
}  # fmt: skip
REQUIRED = ("Data", "Task", "Library", "Scenario", "License", "Name", "Description")


def _type_of(key: str) -> str:
    if key in CLASS_KEYS:
        return "Class"
    if key in TAG_KEYS:
        return "Tag"
    return "String"


def _canonical(value: str, allowed: tuple[str, ...]) -> str | None:
    """Case-insensitive match, so `--task classification` works."""
    for a in allowed:
        if a.lower() == str(value).strip().lower():
            return a
    return None


def normalize(spec: dict[str, Any]) -> dict[str, Any]:
    """Wrap plain values into the reference's {Type, Values} form (does not validate)."""
    if not isinstance(spec, dict):
        raise SemanticSpecError("the semantic specification must be a JSON object")
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if key in ("Input", "Output") or key not in (*CLASS_KEYS, *TAG_KEYS, *STRING_KEYS):
            out[key] = value
            continue
        if isinstance(value, dict) and "Values" in value:
            out[key] = {"Type": value.get("Type", _type_of(key)), "Values": value["Values"]}
            continue
        kind = _type_of(key)
        if kind == "String":
            out[key] = {"Type": "String", "Values": value}
        else:
            out[key] = {"Type": kind, "Values": value if isinstance(value, list) else [value]}
    return out


def _check_io(spec: dict[str, Any], key: str, required: bool, min_dim: int) -> None:
    block = spec.get(key)
    if block is None:
        if required:
            raise SemanticSpecError(f"semantic spec needs '{key}' with a Dimension for this Data/Task")
        return
    if not isinstance(block, dict) or "Dimension" not in block:
        raise SemanticSpecError(f"semantic spec '{key}' must be an object with a 'Dimension'")
    dim = block["Dimension"]
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < min_dim:
        raise SemanticSpecError(f"semantic spec {key}.Dimension must be an integer >= {min_dim}, got {dim!r}")
    desc = block.get("Description", {})
    if not isinstance(desc, dict):
        raise SemanticSpecError(f"semantic spec {key}.Description must map dimension index to text")
    for k, v in desc.items():
        try:
            idx = int(k)
        except (TypeError, ValueError):
            raise SemanticSpecError(f"semantic spec {key}.Description key {k!r} is not a dimension index") from None
        if not 0 <= idx < dim:
            raise SemanticSpecError(f"semantic spec {key}.Description key {k!r} is outside [0, {dim})")
        if not isinstance(v, str):
            raise SemanticSpecError(f"semantic spec {key}.Description[{k!r}] must be a string")


def validate(spec: dict[str, Any]) -> dict[str, Any]:
    """Return the normalised spec, or raise SemanticSpecError naming the first problem."""
    spec = normalize(spec)
    for key in REQUIRED:
        if key not in spec:
            raise SemanticSpecError(f"semantic spec is missing '{key}'")
        kind = _type_of(key)
        block = spec[key]
        if block.get("Type") != kind:
            raise SemanticSpecError(f"semantic spec '{key}' must have Type '{kind}', got {block.get('Type')!r}")
        values = block["Values"]
        if kind == "String":
            if not isinstance(values, str) or not values.strip():
                raise SemanticSpecError(f"semantic spec '{key}' must be a non-empty string")
            continue
        allowed = CLASS_VALUES.get(key) or TAG_VALUES[key]
        if not isinstance(values, list) or not values:
            raise SemanticSpecError(f"semantic spec '{key}' needs a value; allowed: {', '.join(allowed)}")
        if kind == "Class" and len(values) != 1:
            raise SemanticSpecError(f"semantic spec '{key}' takes exactly one value, got {len(values)}")
        fixed = []
        for v in values:
            c = _canonical(v, allowed)
            if c is None:
                raise SemanticSpecError(f"'{v}' is not an allowed {key}; allowed: {', '.join(allowed)}")
            fixed.append(c)
        block["Values"] = fixed
    data = spec["Data"]["Values"][0]
    task = spec["Task"]["Values"][0]
    _check_io(spec, "Input", required=data == "Table", min_dim=1)
    if task in ("Classification", "Regression"):
        _check_io(spec, "Output", required=True, min_dim=1 if task == "Regression" else 2)
    else:
        _check_io(spec, "Output", required=False, min_dim=1)
    return spec


def from_flags(
    *,
    name: str | None = None,
    description: str | None = None,
    data_type: str | None = None,
    task: str | None = None,
    library: str | None = None,
    scenario: list[str] | None = None,
    license: str | None = None,
    input_dim: int | None = None,
    output_dim: int | None = None,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a semantic spec from command-line flags; flags override ``base``."""
    spec = normalize(dict(base or {}))
    values = {
        "Name": name,
        "Description": description,
        "Data": data_type,
        "Task": task,
        "Library": library,
        "Scenario": scenario or None,
        "License": license,
    }
    defaults = {"Library": "Others", "Scenario": ["Others"], "License": "Others"}
    for key, value in values.items():
        if value is None and key not in spec and key in defaults:
            value = defaults[key]
        if value is None:
            continue
        spec.update(normalize({key: value}))
    if "Description" not in spec and "Name" in spec:
        spec["Description"] = {"Type": "String", "Values": spec["Name"]["Values"]}
    if input_dim is not None:
        spec["Input"] = {**spec.get("Input", {}), "Dimension": int(input_dim)}
        spec["Input"].setdefault("Description", {})
    if output_dim is not None:
        spec["Output"] = {**spec.get("Output", {}), "Dimension": int(output_dim)}
        spec["Output"].setdefault("Description", {})
    return spec


def load(path: str | Path) -> dict[str, Any]:
    """Read a semantic spec JSON file (not validated)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"no such semantic spec file: {p}") from None
    except UnicodeDecodeError:
        raise SemanticSpecError(f"semantic spec {p} is not UTF-8 text") from None
    try:
        return normalize(json.loads(text))
    except json.JSONDecodeError as exc:
        raise SemanticSpecError(f"semantic spec {p} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
