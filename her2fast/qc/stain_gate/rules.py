"""What the stain gate may decide, and by which thresholds: its reasons, rules and decision.

What each threshold decides is described in :mod:`her2fast.qc.stain_gate`.

Examples
--------
>>> from her2fast.qc.stain_gate.rules import StainGateDecision
>>> StainGateDecision(False, "greyscale_image", "no colour", {"colour_fraction": float("nan")}).to_dict()["figures"]
{'colour_fraction': None}
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..._validate import as_int, as_positive_float
from ...errors import InvalidInputError

__all__ = [
    "FLAG_CHANNEL_ORDER",
    "REASONS",
    "REASON_CHANNELS_SWAPPED",
    "REASON_CYTOPLASMIC",
    "REASON_GREYSCALE",
    "REASON_HE",
    "REASON_NO_PAIR",
    "REASON_NUCLEAR",
    "StainGateDecision",
    "StainGateRules",
]

REASON_GREYSCALE = "greyscale_image"
REASON_HE = "not_her2_ihc: looks like H&E"
REASON_NO_PAIR = "not_her2_ihc: no DAB/hematoxylin pair"
REASON_NUCLEAR = "nuclear_dab_pattern"
REASON_CHANNELS_SWAPPED = "channels_swapped"
REASON_CYTOPLASMIC = "cytoplasmic_dab_pattern"
#: Every reason the gate gives, in the order it checks them.
REASONS: tuple[str, ...] = (
    REASON_GREYSCALE,
    REASON_HE,
    REASON_NO_PAIR,
    REASON_CHANNELS_SWAPPED,
    REASON_NUCLEAR,
    REASON_CYTOPLASMIC,
)
#: Flag of a slide whose stain colours lean towards red and blue swapped, short of a refusal.
FLAG_CHANNEL_ORDER = "channel_order_suspect"


@dataclass(frozen=True)
class StainGateRules:
    """Thresholds of the stain gate (see the module docstring for what each decides).

    Attributes
    ----------
    min_eosin_fraction : float
        Share of stained pixels with an eosin-pink off-hematoxylin colour at and above which a slide
        looks like H&E.
    eosin_hue_deg : (float, float)
        Hue range (degrees from the DAB direction, in the plane orthogonal to hematoxylin) counted as
        eosin-pink.
    min_off_axis : float
        A pixel's colour counts only when its off-hematoxylin part is at least this share of its OD.
    max_two_stain_residual : float
        Above this share of OD outside the plane of the slide's two stain vectors: no DAB/hematoxylin
        pair.
    stained_dab_od : float
        DAB OD above the tiles' baseline that counts as stained.
    min_nuclear_blob_share, min_nuclear_blobs : float, int
        Nuclear DAB pattern: share of DAB-dominated area in nucleus-like blobs, and their number on the
        sampled tiles.
    min_positive_nucleus_od : float
        A nucleus-like blob counts only when its mean DAB OD above baseline is at least this: fainter
        DAB-dominated blobs are what hematoxylin nuclei become under an imperfect unmixing or a colour cast.
    min_cytoplasm_od, min_pale_ratio : float
        Cytoplasmic DAB pattern: 25th-percentile DAB OD in stained cells, and its ratio to the
        90th percentile.
    min_stained_fraction : float
        The cytoplasmic test needs at least this share of the tiles' tissue stained.
    min_colour_fraction : float
        Below this share of coloured stained pixels the image is greyscale (real HER2 images: 0.75 or more;
        a greyscale image: 0).
    swapped_margin_deg, suspect_margin_deg : float
        ``channel_order_margin_deg`` at and above which the slide is refused as red/blue swapped, and above
        which it is flagged ``channel_order_suspect``.
    """

    min_eosin_fraction: float = 0.25
    eosin_hue_deg: tuple[float, float] = (-150.0, -20.0)
    min_off_axis: float = 0.25
    max_two_stain_residual: float = 0.12
    stained_dab_od: float = 0.15
    min_nuclear_blob_share: float = 0.5
    min_nuclear_blobs: int = 20
    min_positive_nucleus_od: float = 0.30
    min_cytoplasm_od: float = 0.30
    min_pale_ratio: float = 0.40
    min_stained_fraction: float = 0.05
    min_colour_fraction: float = 0.05
    swapped_margin_deg: float = 8.0
    suspect_margin_deg: float = 3.0

    def __post_init__(self) -> None:
        for name in (
            "min_colour_fraction",
            "min_eosin_fraction",
            "min_off_axis",
            "max_two_stain_residual",
            "min_nuclear_blob_share",
            "min_pale_ratio",
            "min_stained_fraction",
        ):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= float(v) <= 1.0):
                raise InvalidInputError(f"StainGateRules.{name} must be a fraction in [0, 1], got {v!r}")
        for name in ("stained_dab_od", "min_cytoplasm_od", "min_positive_nucleus_od"):
            as_positive_float(getattr(self, name), f"StainGateRules.{name}")
        as_int(self.min_nuclear_blobs, "StainGateRules.min_nuclear_blobs", 1)
        for name in ("swapped_margin_deg", "suspect_margin_deg"):
            as_positive_float(getattr(self, name), f"StainGateRules.{name}")
        if self.suspect_margin_deg > self.swapped_margin_deg:
            raise InvalidInputError(
                f"StainGateRules.suspect_margin_deg ({self.suspect_margin_deg}) must not exceed swapped_margin_deg "
                f"({self.swapped_margin_deg})"
            )
        lo, hi = self.eosin_hue_deg
        if not -180.0 <= lo < hi <= 180.0:
            raise InvalidInputError(
                f"StainGateRules.eosin_hue_deg must be (low, high) in [-180, 180], got {self.eosin_hue_deg}"
            )


@dataclass(frozen=True)
class StainGateDecision:
    """What the stain gate decided, and the numbers it decided from.

    Attributes
    ----------
    scorable : bool
        False when the slide must not be scored.
    reason : str or None
        One of :data:`REASONS` when not scorable, else None.
    message : str
        One sentence for a person: what was found and the figures behind it.
    figures : dict of str to float
        Every measured figure (NaN where it could not be measured, e.g. pattern figures without tiles);
        for provenance.
    training_distance : float
        Largest distance of the slide's stain figures from the centre of the models' training range, in
        half-widths of that range (<= 1 inside).
    outside_training_range : bool
        ``training_distance > 1``: the slide's stains are unlike anything the models were trained on. A
        flag, not a refusal.
    flags : tuple of str
        Warnings short of a refusal (:data:`FLAG_CHANNEL_ORDER`).
    """

    scorable: bool
    reason: str | None
    message: str
    figures: dict[str, float] = field(default_factory=dict)
    training_distance: float = 0.0
    outside_training_range: bool = False
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (figures rounded to 4 decimals, NaN as None)."""
        d = asdict(self)
        d["figures"] = {k: (None if not math.isfinite(v) else round(float(v), 4)) for k, v in self.figures.items()}
        d["training_distance"] = None if not math.isfinite(self.training_distance) else round(self.training_distance, 4)
        d["flags"] = list(self.flags)
        return d
