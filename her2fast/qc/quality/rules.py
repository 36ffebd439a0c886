"""The reasons a quality map gives and its thresholds (:class:`QualityRules`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..._validate import as_positive_float
from ...errors import InvalidInputError

__all__ = ["QUALITY_REASONS", "REASON_UNUSABLE", "QualityRules"]

#: The reasons a quality map gives, in the order they are reported.
QUALITY_REASONS: tuple[str, ...] = (
    "out_of_focus",
    "pen_ink",
    "fold",
    "saturated",
    "bubble",
    "precipitate",
    "glass_edge",
)

#: Code of the not-scorable reason (and flag) when too much of the tumour area is unusable.
REASON_UNUSABLE = "unusable_tumour_area"


@dataclass(frozen=True)
class QualityRules:
    """Thresholds and scales of :func:`quality_map` (see the module docstring).

    Attributes
    ----------
    step_um : float
        Size of a map pixel.
    window_um : float
        Side of the window over which focus is measured.
    focus_min : float
        Windows whose focus ratio is lower are out of focus.
    focus_bridge_um : float
        Out-of-focus areas closer than this count as one when areas smaller than a window are dropped.
    focus_near_um : float
        ... and those within this distance of an area larger than a window are kept.
    focus_edge_reach_um : float
        Map pixels this near the edge of an out-of-focus area (either side) are decided again by the
        votes of smaller windows.
    focus_edge_um : float
        Side of those smaller windows.
    focus_edge : float
        A smaller window votes "out of focus" when its focus ratio is below this.
    focus_detail_min : float
        Detail energy (mean squared optical density) at which a smaller window's vote counts half: flat
        windows (glass, smooth stroma) say little about focus.
    focus_vote_um : float
        Gaussian scale (sigma) over which the votes are averaged.
    focus_edge_prior : float
        Beside an out-of-focus area, the averaged votes count one more vote of "out of focus" with this
        weight (a window of full detail weighs about 1): where the windows near the edge carry almost no
        evidence (smooth, pale stroma) the tissue beside the area is taken as out of focus with it.
    focus_tissue_od : float
        Inside an out-of-focus area, windows down to this mean optical density are tissue (blur lowers the
        mean optical density of pale tissue).
    fine_um, detail_um : float
        Gaussian scales (sigma) separating the finest detail from the cell-scale detail.
    min_tissue_od : float
        Windows whose mean optical density is lower are glass and not judged.
    ink_mpp : float
        Resolution at which ink is looked for.
    fold_ratio, fold_grow_ratio : float
        A fold is a connected region whose optical-density floor is above ``fold_grow_ratio`` times the
        median floor of the tissue away from glass and that holds at least ``fold_min_um^2`` above
        ``fold_ratio`` times it.
    fold_edge : float
        A fold's edge lies where the floor has risen this share of the way from the tissue beside it to
        the fold (0.5: the midpoint of the blurred step).
    fold_edge_um : float
        Smoothing of the floor on which the edge is placed.
    fold_min_od : float
        ... and whose floor (optical density of the red channel) is above this there.
    fold_floor_um : float
        Side of the square within which the floor (the lowest optical density) is taken.
    fold_min_um : float
        Side of the smallest area of a fold's core (above ``fold_ratio``).
    saturated_level : int
        A pixel whose every channel is below this level (0-255) is saturated (optical density above 0.8
        in all three: the intensity cannot be read).
    saturated_share : float
        A map pixel at least this share saturated is ``saturated``.
    rim_um : float
        A bubble's rim is measured against the mean optical density over this square.
    rim_min_od, rim_max_chroma : float
        A rim pixel is darker than that mean by more than ``rim_min_od`` in every channel, the channels'
        excess within ``rim_max_chroma`` of the largest (grey).
    bubble_min_um : float
        Diameter of the smallest bubble (of its inside, without the rim).
    bubble_inner_rim : float
        Largest share of a bubble's rim pixels deeper than 8 um inside it (more: a network of dark lines).
    precipitate_min_od : float
        A DAB precipitate granule is darker than this in the red channel (optical density at about 1 um/px;
        the darkest 3+ membranes of the real fields stay below it).
    precipitate_brown : float
        ... and brown: the blue channel's optical density above the red's by at least this share of it.
    precipitate_max_um : float
        ... and at most this across (a membrane is a longer line, a saturated patch wider).
    precipitate_contrast : float
        ... and darker (its darkest pixel, red channel) than the mean of the pixels around it that are not
        dark brown by at least this optical density: it lies on top of the tissue.
    precipitate_line_od : float
        ... and its dark brown down to this red optical density is at most twice ``precipitate_max_um``
        across (a continuous membrane's darkest stretches are one line at this level).
    precipitate_gap_um : float
        Granules less than this apart belong to one cluster.
    precipitate_grow_um : float
        A cluster's edge lies this far beyond its outermost granules (about half their spacing).
    precipitate_min_granules : int
        A cluster with fewer granules is not precipitate.
    edge_line_um : float
        A glass edge's candidate pixels are darker than their mean over this square (at about 2 um/px) by
        half ``edge_line_od`` in every channel, the channels within ``rim_max_chroma`` of the largest.
    edge_line_od : float
        A glass edge's line, in the median profile across it, stands above the clear side 6 um away by at
        least this optical density in every channel (and no lower than the shadow side).
    edge_min_um : float
        A glass edge is at least this long inside the image.
    edge_min_radius_um : float
        ... and bends to no smaller radius.
    edge_max_um : float
        The profile across an edge reaches this far on either side; each side's own level is measured in
        its last 24 um, so a shadow band wider than ``edge_max_um - 24`` um is cut short.
    edge_shadow_od : float
        A shadow band stands above its side's level by at least this optical density (mean of the
        channels, 6 to 14 um from the line); with less, the band is the line alone.
    edge_band_end : float
        The band ends where its excess falls below this share of the shadow's (of the line's, on the
        clear side).
    edge_cover : float
        A map pixel at least this share inside the band is ``glass_edge``.
    edge_max_chroma : float
        A glass edge's line is grey: in the median profile its excess over the clear side is within this
        share of the largest channel in every channel. DAB is not (its optical density in red is 0.16-0.35
        of that in blue), nor is hematoxylin (blue 0.41-0.46 of red or green); a mixture of the two can be,
        hence ``edge_continuity``.
    edge_piece_um, edge_continuity : float
        A glass edge's line shows in at least ``edge_continuity`` of the pieces of ``edge_piece_um`` along
        it (each piece's median profile: the line at least half as far above the clear side as in the
        median over the whole length, in every channel): an edge adds the same line wherever it runs,
        over tissue and glass; stained membranes side by side show a line only in places.
    max_unusable_tumour : float
        A slide whose tumour area (epithelium in the segmented tiles) is unusable for more than this
        fraction is not scorable (:data:`REASON_UNUSABLE`): the rest is too small a sample of the tumour.
    look_for : tuple of str
        The reasons looked for (the others' maps stay empty), by default all of :data:`QUALITY_REASONS`.
    """

    step_um: float = 4.0
    window_um: float = 32.0
    focus_min: float = 0.012
    focus_bridge_um: float = 8.0
    focus_near_um: float = 128.0
    focus_edge_reach_um: float = 16.0
    focus_edge_um: float = 12.0
    focus_edge: float = 0.016
    focus_detail_min: float = 3e-5
    focus_vote_um: float = 6.0
    focus_edge_prior: float = 0.03
    focus_tissue_od: float = 0.03
    fine_um: float = 0.7
    detail_um: float = 8.0
    min_tissue_od: float = 0.04
    ink_mpp: float = 4.0
    fold_ratio: float = 1.7
    fold_grow_ratio: float = 1.3
    fold_edge: float = 0.5
    fold_edge_um: float = 8.0
    fold_min_od: float = 0.05
    fold_floor_um: float = 16.0
    fold_min_um: float = 32.0
    saturated_level: int = 40
    saturated_share: float = 0.5
    rim_um: float = 12.0
    rim_min_od: float = 0.1
    rim_max_chroma: float = 0.5
    bubble_min_um: float = 40.0
    bubble_inner_rim: float = 0.1
    precipitate_min_od: float = 0.5
    precipitate_brown: float = 0.3
    precipitate_max_um: float = 6.0
    precipitate_contrast: float = 0.45
    precipitate_line_od: float = 0.3
    precipitate_gap_um: float = 24.0
    precipitate_grow_um: float = 6.0
    precipitate_min_granules: int = 8
    edge_line_um: float = 12.0
    edge_line_od: float = 0.1
    edge_min_um: float = 200.0
    edge_min_radius_um: float = 1000.0
    edge_max_um: float = 80.0
    edge_shadow_od: float = 0.04
    edge_band_end: float = 0.25
    edge_cover: float = 0.25
    edge_max_chroma: float = 0.2
    edge_piece_um: float = 40.0
    edge_continuity: float = 0.8
    max_unusable_tumour: float = 0.5
    look_for: tuple[str, ...] = QUALITY_REASONS

    def __post_init__(self) -> None:
        bad = [r for r in self.look_for if r not in QUALITY_REASONS]
        if bad or isinstance(self.look_for, str):
            raise InvalidInputError(
                f"look_for must be a tuple of reasons among {list(QUALITY_REASONS)}, got {self.look_for!r}"
            )
        for name in (
            "step_um",
            "window_um",
            "focus_min",
            "focus_edge_reach_um",
            "focus_edge_um",
            "focus_edge",
            "focus_detail_min",
            "focus_vote_um",
            "focus_tissue_od",
            "fine_um",
            "detail_um",
            "min_tissue_od",
            "ink_mpp",
            "fold_ratio",
            "fold_grow_ratio",
            "fold_min_od",
            "fold_edge_um",
            "fold_floor_um",
            "fold_min_um",
            "rim_um",
            "rim_min_od",
            "bubble_min_um",
            "precipitate_min_od",
            "precipitate_max_um",
            "precipitate_contrast",
            "precipitate_line_od",
            "precipitate_gap_um",
            "precipitate_grow_um",
            "edge_line_um",
            "edge_line_od",
            "edge_min_um",
            "edge_min_radius_um",
            "edge_shadow_od",
            "edge_piece_um",
        ):
            as_positive_float(getattr(self, name), name)
        for name in ("focus_bridge_um", "focus_near_um", "focus_edge_prior"):
            if not float(getattr(self, name)) >= 0.0:
                raise InvalidInputError(f"{name} must be 0 or more, got {getattr(self, name)!r}")
        if not (0.0 < float(self.max_unusable_tumour) <= 1.0):
            raise InvalidInputError(f"max_unusable_tumour must be in (0, 1], got {self.max_unusable_tumour!r}")
        for name in (
            "saturated_share",
            "rim_max_chroma",
            "bubble_inner_rim",
            "fold_edge",
            "precipitate_brown",
            "edge_band_end",
            "edge_cover",
            "edge_continuity",
            "edge_max_chroma",
        ):
            if not (0.0 < float(getattr(self, name)) <= 1.0):
                raise InvalidInputError(f"{name} must be in (0, 1], got {getattr(self, name)!r}")
        if int(self.precipitate_min_granules) < 1:
            raise InvalidInputError(
                f"precipitate_min_granules must be 1 or more, got {self.precipitate_min_granules!r}"
            )
        if not (0 < int(self.saturated_level) < 255):
            raise InvalidInputError(f"saturated_level must be in 1..254, got {self.saturated_level!r}")
        if not float(self.edge_max_um) >= 40.0:
            raise InvalidInputError(
                f"edge_max_um must be 40 or more (its last 24 um are the sides' level), got {self.edge_max_um!r}"
            )
        if self.detail_um <= self.fine_um:
            raise InvalidInputError(f"detail_um ({self.detail_um}) must be larger than fine_um ({self.fine_um})")
