"""What a quality map holds (:class:`QualityMap`) and what maps removed from a run (:class:`QualityTally`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ...errors import InvalidInputError
from .rules import QUALITY_REASONS, QualityRules

__all__ = ["QualityMap", "QualityTally"]


@dataclass
class QualityMap:
    """Per-pixel quality of an image, at ``step_um`` micrometres per map pixel.

    Map pixel ``(i, j)`` covers image pixels ``[i*step_px, (i+1)*step_px) x [j*step_px, (j+1)*step_px)``;
    the last row and column may reach past the image.

    Attributes
    ----------
    step_um : float
    step_px : int
        Image pixels per map pixel.
    tissue : (h, w) bool
        Map pixels that were judged (not glass).
    reasons : dict of str to (h, w) bool
        Unusable tissue per reason (:data:`QUALITY_REASONS`); a pixel may have several.
    focus : (h, w) float32
        The focus ratio (NaN where not judged).
    rules : QualityRules
    """

    step_um: float
    step_px: int
    tissue: np.ndarray
    reasons: dict[str, np.ndarray]
    focus: np.ndarray
    rules: QualityRules = field(default_factory=QualityRules)

    @property
    def unusable(self) -> np.ndarray:
        """Tissue left out for any reason."""
        out = np.zeros_like(self.tissue)
        for m in self.reasons.values():
            out |= m
        return out & self.tissue

    def removed_fraction(self) -> dict[str, float]:
        """Fraction of the judged tissue each reason removes, and ``"any"`` for all of them together."""
        n = max(int(self.tissue.sum()), 1)
        out = {r: float((m & self.tissue).sum()) / n for r, m in self.reasons.items()}
        out["any"] = float(self.unusable.sum()) / n
        return out

    def upsample(self, shape: tuple[int, int], which: str | None = None) -> np.ndarray:
        """A reason's map (or :attr:`unusable` for None) at image resolution, cropped to ``shape``."""
        if which is None:
            m = self.unusable
        elif which in self.reasons:
            m = self.reasons[which] & self.tissue
        else:
            raise InvalidInputError(f"which must be None or one of {list(self.reasons)}, got {which!r}")
        k = self.step_px
        big = np.repeat(np.repeat(m, k, axis=0), k, axis=1)
        h, w = shape
        if big.shape[0] < h or big.shape[1] < w:
            raise InvalidInputError(f"shape {shape} is larger than the image this map was made from")
        return big[:h, :w]

    def to_dict(self) -> dict:
        """The removed fractions and the rules (for provenance)."""
        return {"removed_fraction": self.removed_fraction(), "rules": asdict(self.rules)}

    def _full(self, m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        k = self.step_px
        return np.repeat(np.repeat(m, k, axis=0), k, axis=1)[: shape[0], : shape[1]]

    def unusable_at(self, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        """Whether image points lie in unusable tissue, per reason and ``"any"``.

        ``x``, ``y`` are positions in image pixels, pixel ``(i, j)`` centred at ``x = j, y = i``;
        points outside the map take the nearest map pixel.
        """
        h, w = self.tissue.shape
        k = self.step_px
        j = np.clip(np.floor(np.asarray(x, np.float64) + 0.5).astype(np.int64) // k, 0, w - 1)
        i = np.clip(np.floor(np.asarray(y, np.float64) + 0.5).astype(np.int64) // k, 0, h - 1)
        out = {r: (m & self.tissue)[i, j] for r, m in self.reasons.items()}
        out["any"] = self.unusable[i, j]
        return out

    def tally(self, core: tuple[int, int, int, int], tumour: np.ndarray | None = None) -> QualityTally:
        """The image pixels of tissue (and of ``tumour``) inside ``core`` that each reason removes.

        Parameters
        ----------
        core : (x0, y0, x1, y1)
            Half-open image-pixel box (the part of the image a tile owns).
        tumour : (H, W) bool, optional
            The tumour (epithelium) mask of the whole image.
        """
        x0, y0, x1, y1 = (int(v) for v in core)
        shape = (y1, x1)
        sl = (slice(y0, y1), slice(x0, x1))
        t = QualityTally()
        t.tissue_px = int(self._full(self.tissue, shape)[sl].sum())
        unusable = self._full(self.unusable, shape)[sl]
        epi = None if tumour is None else np.asarray(tumour, bool)[sl]
        if epi is not None:
            t.tumour_px = int(epi.sum())
        for r, m in [*self.reasons.items(), ("any", None)]:
            full = unusable if m is None else self._full(m & self.tissue, shape)[sl]
            t.removed_px[r] = int(full.sum())
            if epi is not None:
                t.tumour_removed_px[r] = int((full & epi).sum())
        return t


@dataclass
class QualityTally:
    """What quality maps removed from a run, summed over its tiles (:meth:`QualityMap.tally`).

    Attributes
    ----------
    tissue_px, tumour_px : int
        Image pixels of judged tissue and of tumour (epithelium) looked at.
    removed_px, tumour_removed_px : dict of str to int
        Of those, the pixels each reason (and ``"any"``) removed.
    cells_removed, tumour_cells_removed : int
        Cells (and tumour cells) left out of the cell table because their centre lay in unusable tissue.
    """

    tissue_px: int = 0
    tumour_px: int = 0
    removed_px: dict[str, int] = field(default_factory=dict)
    tumour_removed_px: dict[str, int] = field(default_factory=dict)
    cells_removed: int = 0
    tumour_cells_removed: int = 0

    def add(self, other: QualityTally) -> None:
        """Add another tally to this one."""
        self.tissue_px += other.tissue_px
        self.tumour_px += other.tumour_px
        for mine, theirs in ((self.removed_px, other.removed_px), (self.tumour_removed_px, other.tumour_removed_px)):
            for r, v in theirs.items():
                mine[r] = mine.get(r, 0) + v
        self.cells_removed += other.cells_removed
        self.tumour_cells_removed += other.tumour_cells_removed

    @property
    def unusable_tumour_fraction(self) -> float:
        """Fraction of the tumour area removed for any reason (0 when no tumour was looked at)."""
        return self.tumour_removed_px.get("any", 0) / self.tumour_px if self.tumour_px else 0.0

    def to_dict(self, mpp: float, rules: QualityRules) -> dict:
        """Areas in um^2 and % of the tissue / tumour looked at, cells removed, and the decision (provenance)."""
        a = float(mpp) ** 2
        reasons = [*QUALITY_REASONS, "any"]

        def pct(n: int, d: int) -> float:
            return round(100.0 * n / d, 3) if d else 0.0

        frac = self.unusable_tumour_fraction
        return {
            "tissue_um2": round(self.tissue_px * a, 1),
            "tumour_um2": round(self.tumour_px * a, 1),
            "removed_um2": {r: round(self.removed_px.get(r, 0) * a, 1) for r in reasons},
            "removed_percent_of_tissue": {r: pct(self.removed_px.get(r, 0), self.tissue_px) for r in reasons},
            "removed_percent_of_tumour": {r: pct(self.tumour_removed_px.get(r, 0), self.tumour_px) for r in reasons},
            "cells_removed": int(self.cells_removed),
            "tumour_cells_removed": int(self.tumour_cells_removed),
            "max_unusable_tumour": float(rules.max_unusable_tumour),
            "scorable": bool(frac <= rules.max_unusable_tumour),
            "rules": asdict(rules),
        }
