"""The hetero index on disk, beside the search store: ``<dock>/hetero/``.

::

    index.json            one record per table learnware the index has considered (eligible or
                          not, and why), the name embedder, the format version
    lw/<id>.npz           an eligible learnware's stats (TableStats arrays) and column importance
    names.npz             the name table: normalised name -> MiniLM embedding (append-only)
    map/manifest.json     the trained map: seed, config, what it was trained on, timings
    map/weights.npz       its weights (plain arrays; nothing is pickled)
    map/emb/<id>.npz      a learnware's reduced set embedded by the map, and its self term

Everything here is derived from the dock (``lwdock doctor`` checks it and rebuilds it) and
holds no absolute path, so a dock copied to another folder gives the same results. Every file
is replaced atomically; writers hold the dock lock.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import write_atomic
from .names import NAME_EMBEDDER
from .stats import TableStats

INDEX_FORMAT = "lwdock.hetero-index"
INDEX_VERSION = 1
DIR_NAME = "hetero"

# importance states of an eligible learnware
MODEL, UNIFORM, PENDING, FAILED = "model", "uniform", "pending", "failed"


@dataclass
class Record:
    """What the index knows about one table learnware (eligible or not)."""

    id: str
    eligible: bool
    status: str = ""
    reason: str | None = None  # why it is not eligible
    names: list[str] = field(default_factory=list)
    task: str | None = None  # "classification" or "regression"
    n_out: int = 1
    exact: bool = True  # stats from the packed rows (True) or derived from the table RKME
    importance: str = PENDING
    imp: list[float] = field(default_factory=list)  # the column importances (search bounds with them)
    note: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Record:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        rec = cls(**known)
        if not isinstance(rec.id, str) or not isinstance(rec.names, list):
            raise ValueError("bad hetero index record")
        return rec


def hetero_dir(dock: Any) -> Path:
    """``<dock>/hetero``: beside the search store."""
    return Path(dock.layout.search).parent / DIR_NAME


def _npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


class HeteroStore:
    """Reads and writes ``<dock>/hetero``. Reading never changes anything."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- paths --------------------------------------------------------------------------------
    @property
    def index_file(self) -> Path:
        return self.root / "index.json"

    @property
    def names_file(self) -> Path:
        return self.root / "names.npz"

    @property
    def map_dir(self) -> Path:
        return self.root / "map"

    def stats_file(self, lw_id: str) -> Path:
        return self.root / "lw" / f"{lw_id}.npz"

    def emb_file(self, lw_id: str) -> Path:
        return self.map_dir / "emb" / f"{lw_id}.npz"

    def exists(self) -> bool:
        return self.index_file.is_file()

    # -- the index ------------------------------------------------------------------------------
    def read_index(self) -> dict[str, Record]:
        """Records by id; ``{}`` when there is no index yet. Raises ValueError/OSError when damaged."""
        if not self.index_file.exists():
            return {}
        doc = json.loads(self.index_file.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT:
            raise ValueError(f"{self.index_file} is not a hetero index")
        if doc.get("version") != INDEX_VERSION or doc.get("embedder") != NAME_EMBEDDER:
            raise ValueError(f"{self.index_file} was written by another lwdock (version or embedder differ)")
        return {r["id"]: Record.from_dict(r) for r in doc.get("learnwares") or []}

    def write_index(self, records: Mapping[str, Record]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        doc = {"format": INDEX_FORMAT, "version": INDEX_VERSION, "embedder": NAME_EMBEDDER,
               "learnwares": [asdict(records[i]) for i in sorted(records)]}
        write_atomic(self.index_file, json.dumps(doc, separators=(",", ":")).encode("utf-8"))

    # -- per learnware ----------------------------------------------------------------------------
    def write_stats(self, lw_id: str, stats: TableStats, importance: np.ndarray) -> None:
        path = self.stats_file(lw_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {**stats.arrays(), "importance": np.asarray(importance, dtype=np.float64),
                  "exact": np.asarray(stats.exact), "num_points": np.asarray(stats.num_points)}
        write_atomic(path, _npz_bytes(arrays))

    def read_stats(self, lw_id: str, names: Iterable[str]) -> tuple[TableStats, np.ndarray]:
        a = _read_npz(self.stats_file(lw_id))
        stats = TableStats(tuple(names), a["mean"], a["sd"], a["z"], a["beta"], bool(a["exact"]), int(a["num_points"]))
        if stats.z.ndim != 2 or stats.z.shape[1] != len(stats.names) or a["importance"].shape != (stats.d,):
            raise ValueError(f"{self.stats_file(lw_id)} does not match its index record")
        stats.__dict__["spearman"] = a["spearman"]  # precomputed at ingest: search reads, never recomputes
        stats.__dict__["quantiles"] = a["quantiles"]
        return stats, a["importance"]

    def drop(self, lw_id: str) -> None:
        self.stats_file(lw_id).unlink(missing_ok=True)
        self.emb_file(lw_id).unlink(missing_ok=True)

    # -- the name table ---------------------------------------------------------------------------
    def read_names(self) -> tuple[list[str], np.ndarray]:
        if not self.names_file.exists():
            return [], np.zeros((0, 0), dtype=np.float32)
        a = _read_npz(self.names_file)
        keys = [str(k) for k in a["keys"]]
        if a["E"].shape[0] != len(keys):
            raise ValueError(f"{self.names_file} is damaged")
        return keys, a["E"]

    def write_names(self, keys: list[str], E: np.ndarray) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        order = np.argsort(np.asarray(keys, dtype=str), kind="stable")
        arrays = {"keys": np.asarray(keys, dtype=str)[order], "E": np.asarray(E, dtype=np.float32)[order]}
        write_atomic(self.names_file, _npz_bytes(arrays))

    # -- the trained map --------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any] | None:
        path = self.map_dir / "manifest.json"
        if not path.exists():
            return None
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict):
            raise ValueError(f"{path} is damaged")
        return doc

    def read_weights(self) -> dict[str, np.ndarray]:
        return _read_npz(self.map_dir / "weights.npz")

    def write_map(self, manifest: Mapping[str, Any], weights: Mapping[str, np.ndarray],
                  embeddings: Mapping[str, tuple[np.ndarray, float]]) -> None:
        """Replace the whole trained map at once: a new folder, then one rename."""
        new = self.root / ".map.new"
        shutil.rmtree(new, ignore_errors=True)
        (new / "emb").mkdir(parents=True)
        write_atomic(new / "weights.npz", _npz_bytes(weights))
        for lw_id, (E, self_term) in embeddings.items():
            write_atomic(new / "emb" / f"{lw_id}.npz", _npz_bytes({"E": E, "self": np.asarray(self_term)}))
        write_atomic(new / "manifest.json", json.dumps(dict(manifest), indent=1, sort_keys=True).encode("utf-8"))
        old = self.root / ".map.old"
        shutil.rmtree(old, ignore_errors=True)
        if self.map_dir.exists():
            self.map_dir.replace(old)
        new.replace(self.map_dir)
        shutil.rmtree(old, ignore_errors=True)

    def write_embedding(self, lw_id: str, E: np.ndarray, self_term: float) -> None:
        path = self.emb_file(lw_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, _npz_bytes({"E": np.asarray(E, dtype=np.float32), "self": np.asarray(self_term)}))

    def read_embedding(self, lw_id: str) -> tuple[np.ndarray, float] | None:
        path = self.emb_file(lw_id)
        if not path.exists():
            return None
        a = _read_npz(path)
        return a["E"], float(a["self"])

    def embedded_ids(self) -> set[str]:
        d = self.map_dir / "emb"
        return {p.stem for p in d.glob("*.npz")} if d.exists() else set()

    # -- housekeeping ----------------------------------------------------------------------------
    def leftovers(self) -> list[Path]:
        """Temp files and half-replaced map folders an interrupted writer left."""
        if not self.root.exists():
            return []
        found = [p for p in self.root.rglob(".*.tmp")]
        found += [p for p in (self.root / ".map.new", self.root / ".map.old") if p.exists()]
        return found

    def stats_ids(self) -> set[str]:
        d = self.root / "lw"
        return {p.stem for p in d.glob("*.npz")} if d.exists() else set()

    def wipe(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
