"""What every RKME specification shares: a weighted point set ``(z_, beta_)`` and the estimator contract.

Subclasses (:class:`~lwdock.spec.rkme_table.RKMETableSpec`, ``RKMEImageSpec``, ``RKMETextSpec``)
follow scikit-learn's estimator contract: hyperparameters in ``__init__`` only (no ``**kwargs``),
fitted attributes end in ``_``, ``get_params(deep=...)`` / ``set_params`` read and write exactly
the ``__init__`` parameters, and ``sklearn.base.clone`` works (the tests check it with
scikit-learn itself). They supply the kernel (``_self`` and ``inner_prod``), their file codec
(``codec``) and the feature space their points live in (``search_space``; the dock picks the
search kernel per feature space, :mod:`lwdock.search.kernel`);
this class derives the rest.

Why not subclass ``sklearn.base.BaseEstimator``: importing it costs ~0.8 s (it loads scipy and
sklearn's validation machinery), and every ``lwdock search`` process loads a spec class to read
the user's spec file; the contract clone relies on is these two methods.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from ..errors import InputDataError, SpecParamError
from . import specfile

S = TypeVar("S", bound="RKMESpec")


class RKMESpec:
    """Base class of the RKME specifications (not used on its own)."""

    type: ClassVar[str] = ""  # the file ``type``; lwdock.spec.registry maps it back to the class
    codec: ClassVar[specfile.Codec]

    # -- the estimator contract -------------------------------------------------------------
    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The ``__init__`` parameters, sorted (scikit-learn's convention)."""
        params = inspect.signature(cls.__init__).parameters.values()
        if any(p.kind == p.VAR_POSITIONAL or p.kind == p.VAR_KEYWORD for p in params):
            raise TypeError(f"{cls.__name__}.__init__ must name every hyperparameter (no *args/**kwargs)")
        return sorted(p.name for p in params if p.name != "self")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters by name; ``deep`` is accepted for scikit-learn (no parameter is an estimator)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self: S, **params: Any) -> S:
        valid = set(self._get_param_names())
        for name, value in params.items():
            if name not in valid:
                raise SpecParamError(f"{type(self).__name__} has no hyperparameter {name!r}; "
                                     f"valid: {', '.join(sorted(valid))}")
            setattr(self, name, value)
        return self

    # -- what a subclass provides ---------------------------------------------------------
    def _self(self) -> float:
        """``<mu, mu>`` under this spec's kernel (cached by subclasses)."""
        raise NotImplementedError

    def inner_prod(self, other: Any) -> float:
        raise NotImplementedError

    def search_space(self) -> dict[str, Any]:
        """The feature space the spec's points live in (only specs of one space are compared)."""
        raise NotImplementedError

    # -- shared behaviour -----------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "z_"):
            raise InputDataError("this specification is not fitted; call fit(X) or load a file first")

    @staticmethod
    def _require(ok: bool, message: str) -> None:
        """Reject a bad hyperparameter with a usage error (exit 2): it is the caller's setting, not their data."""
        if not ok:
            raise SpecParamError(message)

    def dist(self, other: Any) -> float:
        """Squared MMD ``<A,A> - 2<A,B> + <B,B>`` (each self term under its own kernel), clamped at 0."""
        if other is self:
            return 0.0
        value = self._self() - 2.0 * self.inner_prod(other) + other._self()
        return max(float(value), 0.0)

    def _positive_weights(self) -> np.ndarray:
        w = np.clip(np.asarray(self.beta_, dtype=np.float64), 0.0, None)  # a copy: beta_ stays as is
        total = w.sum()
        return w / total if total > 0 else np.full(w.size, 1.0 / w.size)

    def sample(self, n: int, random_state: int | None = None, noise_std: float = 0.0) -> np.ndarray:
        """``n`` draws from the weighted reduced set (plus optional Gaussian noise), in ``z_``'s dtype."""
        self._check_fitted()
        rng = np.random.default_rng(random_state)
        idx = rng.choice(self.beta_.size, size=int(n), p=self._positive_weights())
        out = np.array(self.z_[idx])
        if noise_std > 0:
            out += rng.normal(0.0, noise_std, size=out.shape).astype(out.dtype)
        return out

    # -- files ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return self.codec.to_dict(self)

    @classmethod
    def from_dict(cls: type[S], data: dict[str, Any], source: str = "specification") -> S:
        return cls.codec.from_dict(data, cls, source)

    def save(self, path: str | Path) -> None:
        specfile.save_dict(self.to_dict(), path)

    @classmethod
    def load(cls: type[S], path: str | Path) -> S:
        return cls.from_dict(specfile.read_dict(path), source=str(path))
