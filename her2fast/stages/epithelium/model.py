"""The fitted epithelium classifier: an RBF-SVM as plain arrays, its file format and the shipped model.

Classifier (:class:`EpitheliumModel`)
-------------------------------------
Standardised features (mean 0, variance 1 on the training set), RBF kernel
``exp(-gamma ||x - y||^2)``, trained with scikit-learn's ``SVC``
(:func:`~her2fast.stages.epithelium.training.fit_epithelium_model`). The paper's sigma = 6, i.e.
``gamma = 1 / (2 sigma^2) = 1/72``, was measured and is too narrow for the 238 RGB features; the defaults
(:func:`~her2fast.stages.epithelium.training.default_gamma`) are gamma = 0.02 for the 46 stain-histogram
features and 0.001 for the 238 RGB ones, C = 10 (tuned on phantoms). The fitted model is stored as plain
arrays (support vectors, dual coefficients, intercept, gamma, feature scaling, classes) in ``model.npz``
plus ``config.json`` (version, settings, sha256 of the arrays) -- no pickle -- and evaluated by a numpy
predictor equal to scikit-learn's.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..._files import file_sha256
from ...errors import InvalidInputError, ModelError
from .features import EpitheliumSettings

#: Version of the stored model format (``config.json`` ``format_version``).
MODEL_FORMAT_VERSION = 1
#: Class names, in the order of the model's classes (0 = stroma, 1 = epithelium).
CLASSES = ("stroma", "epithelium")

_DEFAULT_MODEL_DIR = "epithelium_svm"


@dataclass(frozen=True)
class EpitheliumModel:
    """A fitted RBF-SVM epithelium/stroma classifier as plain arrays, with a numpy predictor.

    ``decision_function(X) = sum_i dual_coef[i] * exp(-gamma * ||z - sv_i||^2) + intercept`` with
    ``z = (X - feature_mean) / feature_scale``; positive means ``classes[1]`` (epithelium), exactly as
    scikit-learn's ``SVC.decision_function`` on a ``StandardScaler`` pipeline.

    Attributes
    ----------
    support_vectors : (S, D) float64
        In scaled feature space.
    dual_coef : (S,) float64
    intercept : float
    gamma : float
    feature_mean, feature_scale : (D,) float64
    classes : tuple of str
        ``("stroma", "epithelium")``.
    settings : EpitheliumSettings
    metadata : dict
        Free-form provenance (training data, command, metrics) stored in ``config.json``.
    sha256 : str
        Of ``model.npz`` when loaded from or saved to disk ("" otherwise).
    """

    support_vectors: np.ndarray
    dual_coef: np.ndarray
    intercept: float
    gamma: float
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    classes: tuple[str, ...] = CLASSES
    settings: EpitheliumSettings = field(default_factory=EpitheliumSettings)
    metadata: dict = field(default_factory=dict)
    sha256: str = ""

    def __post_init__(self) -> None:
        sv = np.asarray(self.support_vectors, np.float64)
        d = len(self.settings.feature_names())
        if sv.ndim != 2 or sv.shape[1] != d:
            raise ModelError(f"support_vectors must be (S, {d}) for these settings, got {sv.shape}")
        for name, shape in (("dual_coef", (sv.shape[0],)), ("feature_mean", (d,)), ("feature_scale", (d,))):
            a = np.asarray(getattr(self, name), np.float64).reshape(-1)
            if a.shape != shape or not np.all(np.isfinite(a)):
                raise ModelError(f"{name} must hold {shape[0]} finite values, got shape {a.shape}")
            object.__setattr__(self, name, a)
        if np.any(self.feature_scale <= 0):
            raise ModelError("feature_scale must be > 0")
        object.__setattr__(self, "support_vectors", np.ascontiguousarray(sv))
        object.__setattr__(self, "_sv_sq", np.einsum("ij,ij->i", sv, sv))

    @property
    def n_features(self) -> int:
        return int(self.support_vectors.shape[1])

    def decision_function(self, features: np.ndarray, *, batch: int = 4096) -> np.ndarray:
        """Signed distance to the boundary per row of ``features`` ((N, D) -> (N,) float64; > 0 = epithelium)."""
        x = np.asarray(features, np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise InvalidInputError(f"features must be (N, {self.n_features}), got {x.shape}")
        out = np.empty(x.shape[0], np.float64)
        sv, sv_sq = self.support_vectors, self._sv_sq  # type: ignore[attr-defined]
        for s in range(0, x.shape[0], batch):
            z = (x[s : s + batch] - self.feature_mean) / self.feature_scale
            d2 = np.einsum("ij,ij->i", z, z)[:, None] + sv_sq[None, :] - 2.0 * (z @ sv.T)
            np.maximum(d2, 0.0, out=d2)
            out[s : s + batch] = np.exp(-self.gamma * d2) @ self.dual_coef + self.intercept
        return out

    def predict(self, features: np.ndarray) -> np.ndarray:
        """True where a row is epithelium."""
        return self.decision_function(features) > 0

    # ---------------------------------------------------------------------------- storage
    def save(self, folder: str | Path, *, extra_metadata: dict | None = None) -> EpitheliumModel:
        """Write ``model.npz`` (arrays) and ``config.json`` (settings, version, sha256) to ``folder``.

        Returns the model with :attr:`sha256` set.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        npz = folder / "model.npz"
        np.savez_compressed(
            npz,
            support_vectors=self.support_vectors,
            dual_coef=self.dual_coef,
            intercept=np.array([self.intercept]),
            gamma=np.array([self.gamma]),
            feature_mean=self.feature_mean,
            feature_scale=self.feature_scale,
        )
        digest = file_sha256(npz)
        meta = dict(self.metadata)
        meta.update(extra_metadata or {})
        config = {
            "name": "epithelium_svm",
            "format_version": MODEL_FORMAT_VERSION,
            "kind": "rbf-svm",
            "classes": list(self.classes),
            "settings": asdict(self.settings),
            "feature_names": self.settings.feature_names(),
            "n_support_vectors": int(self.support_vectors.shape[0]),
            "gamma": self.gamma,
            "arrays": "model.npz",
            "sha256": digest,
            "metadata": meta,
        }
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        return replace(self, metadata=meta, sha256=digest)

    @classmethod
    def load(cls, folder: str | Path) -> EpitheliumModel:
        """Read a model written by :meth:`save` (checks the format version and the sha256)."""
        folder = Path(folder)
        cfg_path = folder / "config.json"
        if not cfg_path.is_file():
            raise ModelError(f"{cfg_path} is missing: an epithelium model folder holds config.json and model.npz")
        try:
            cfg = json.loads(cfg_path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"{cfg_path} is not valid JSON ({exc}); re-train or re-install the model") from None
        if cfg.get("format_version") != MODEL_FORMAT_VERSION:
            raise ModelError(
                f"{cfg_path} has format_version {cfg.get('format_version')!r}; this her2fast reads version "
                f"{MODEL_FORMAT_VERSION}: re-train with `her2fast train-epithelium`"
            )
        npz = folder / str(cfg.get("arrays", "model.npz"))
        if not npz.is_file():
            raise ModelError(f"{npz} is missing (named by {cfg_path})")
        digest = file_sha256(npz)
        if digest != cfg.get("sha256"):
            raise ModelError(f"{npz} does not match the sha256 in {cfg_path} (corrupt or replaced); re-install it")
        try:
            # models saved before the white-balance setting existed computed raw histograms
            settings = EpitheliumSettings(**{"white_balance": False, "colour_histograms": "rgb", **cfg["settings"]})
            with np.load(npz, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            return cls(
                support_vectors=arrays["support_vectors"],
                dual_coef=arrays["dual_coef"],
                intercept=float(arrays["intercept"][0]),
                gamma=float(arrays["gamma"][0]),
                feature_mean=arrays["feature_mean"],
                feature_scale=arrays["feature_scale"],
                classes=tuple(cfg["classes"]),
                settings=settings,
                metadata=dict(cfg.get("metadata", {})),
                sha256=digest,
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ModelError):
                raise
            raise ModelError(f"{folder} holds an incomplete or inconsistent epithelium model: {exc}") from None


_DEFAULT: EpitheliumModel | None = None


def default_model() -> EpitheliumModel:
    """The shipped model (``her2fast/models/epithelium_svm``), or the folder in ``$HER2FAST_EPITHELIUM_MODEL``."""
    global _DEFAULT
    override = os.environ.get("HER2FAST_EPITHELIUM_MODEL")
    if override:
        return EpitheliumModel.load(override)
    if _DEFAULT is None:
        from importlib.resources import files

        _DEFAULT = EpitheliumModel.load(Path(str(files("her2fast") / "models" / _DEFAULT_MODEL_DIR)))
    return _DEFAULT
