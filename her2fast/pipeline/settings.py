"""Settings of one slide's run: what decides the result (:class:`ScoreSettings`) and how many threads
run it (:class:`ThreadPlan`)."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import InvalidInputError
from ..scoring import MeasurementUncertainty, ScoringRules
from ..stages.cells import CellSettings
from ..stages.nuclei import NucleiSettings

__all__ = ["ScoreSettings", "ThreadPlan"]

_METHODS = ("unet", "classical")

#: the confidence counts cell sampling only (settings saved before ``ScoreSettings.measurement``)
NO_MEASUREMENT_ERROR = MeasurementUncertainty(
    od_scale_sigma=0.0, completeness_sigma=0.0, flag_od_scale=0.0, flag_completeness=0.0
)


@dataclass(frozen=True)
class ScoreSettings:
    """Everything that decides a slide's result besides the slide and the models.

    Parameters
    ----------
    mpp : float
        Working resolution of tiles, membranes, nuclei and cells (0.5 um/px = 20x).
    tile_size : int
        Core side of a tile in working pixels (704: with the 48-px margins the network sees 800 px in
        one pass. The network's cost is proportional to the pixels it sees, so larger tiles waste
        less on margins: per 512^2 of core, 448-px tiles with the network's own 32-px mirrored
        margin cost 1.37x this default, 448 without it 1.14x, 960 0.95x -- measured with
        ONNX Runtime on one core; larger tiles also process more stroma on sparse slides).
    overlap : int
        Margin read around each core (working pixels). At least ``2 * cells.max_radius_um / mpp``
        (48 px at 0.5 um/px) so that the result does not depend on the tile grid.
    min_tissue : float
        Tiles whose core holds less tissue are not read (0.05).
    min_epithelium : float
        Tiles whose core holds less epithelium (2 um/px map) are not segmented (0.02).
    membrane_method : {"unet", "classical"}
        The shipped U-Net (ONNX Runtime) or the classical ridge-filter baseline
        (:func:`her2fast.stages.membrane.predict_maps`).
    membrane_batch_size : int
        Network tiles per ONNX Runtime call (1: with several inference lanes a batch of 2 was no
        faster on 2 cores and took 420 MB more memory for the lanes' ONNX Runtime buffers; a GPU
        wants larger batches: ``her2fast bench pipeline --batch``).
    membrane_margin : int
        Mirrored margin the network adds around a tile (0: the tile's ``overlap`` is real context
        already; the model's own 32 px changed 0.3 % of cell classes on a 3+ phantom and costs 28 %
        more network time at 704 px).
    crop_to_epithelium : bool
        Segment only the window of each tile that holds its tumour cells (:func:`tile_window`): the
        bounding box of the core's epithelium, rounded out to the network's 16-px grid, owns the
        cells, and ``overlap`` around it is context (what a core cell has at a tile edge). Tumour
        cells keep their full context, so their measurements are those of the whole tile up to the
        network's far context; cells whose centre lies outside that box (stroma away from the tumour)
        are not in the cell table. On the 4096^2 2+ bench phantom the windows are 81 % of the tiles'
        pixels (the network, nuclei and cells stages cost in proportion). The windows' shapes vary:
        on a GPU with large batches (images of one shape share a call; TensorRT builds an engine per
        shape) use False there. False: whole tiles.
    windows_per_tile : int
        With ``crop_to_epithelium``, a tile's window is cut into up to this many windows where that
        saves at least 5 % of its pixels (:func:`tile_windows`: epithelium in two corners of a tile
        is two small windows, not the whole tile). 1: one window per tile.
    membrane_white_balance : bool
        Scale the U-Net's input channels so the slide's glass reads the glass of the phantoms the
        network was trained on (:func:`her2fast.stages.membrane.white_balance_to_training`): a scanner's
        white balance then does not move the membrane map (optical densities are relative to the
        glass already). False: the network reads the scanned RGB.
    stain_gate : bool
        Check that the slide is HER2 membrane IHC before scoring it (:func:`her2fast.qc.check_slide_stain`):
        H&E, slides without a DAB/hematoxylin pair and nuclear or cytoplasmic DAB patterns are not
        scorable; stains far from the models' training range are flagged ``outside_training_range``.
        False skips the check (for stains known to be right that the check refuses).
    quality_map : bool
        Compute the quality map (:func:`her2fast.qc.quality_map`) of every segmented window from the
        pixels already read, and leave out of the cell table the cells whose centre lies in tissue it
        marks unusable (out of focus, under pen ink, folded, saturated, under an air bubble, under DAB precipitate). What each
        reason removed is in ``provenance["qc"]["quality"]``, the flag ``quality_excluded`` says something
        was; a slide whose tumour area is unusable for more than ``QualityRules.max_unusable_tumour``
        (50 %) is not scorable (``unusable_tumour_area``). False: every cell is kept.
    nuclei : NucleiSettings
    cells : CellSettings
        Includes the scoring rules' OD bands (``cells.rules``).
    rules : ScoringRules
        ASCO/CAP thresholds; ``rules.min_tumour_cells`` also decides whether a slide is scorable.
    measurement : MeasurementUncertainty
        The scanner and lab errors of the membrane read-out the confidence counts
        (:func:`her2fast.scoring.measurement_confidence`): a category that changes under them is flagged
        ``intensity_uncertain`` and its confidence capped.
    """

    mpp: float = 0.5
    tile_size: int = 704
    overlap: int = 48
    min_tissue: float = 0.05
    min_epithelium: float = 0.02
    membrane_method: str = "unet"
    membrane_batch_size: int = 1
    membrane_margin: int = 0
    crop_to_epithelium: bool = True
    windows_per_tile: int = 4
    membrane_white_balance: bool = True
    stain_gate: bool = True
    quality_map: bool = True
    nuclei: NucleiSettings = field(default_factory=NucleiSettings)
    cells: CellSettings = field(default_factory=CellSettings)
    rules: ScoringRules = field(default_factory=ScoringRules)
    measurement: MeasurementUncertainty = field(default_factory=MeasurementUncertainty)

    def __post_init__(self) -> None:
        if self.membrane_method not in _METHODS:
            raise InvalidInputError(f"membrane_method must be one of {_METHODS}, got {self.membrane_method!r}")
        if not (math.isfinite(self.mpp) and self.mpp > 0):
            raise InvalidInputError(f"mpp must be finite and > 0, got {self.mpp}")
        for name, lo in (
            ("tile_size", 16),
            ("membrane_batch_size", 1),
            ("membrane_margin", 0),
            ("windows_per_tile", 1),
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise InvalidInputError(f"ScoreSettings.{name} must be an int >= {lo}, got {v!r}")
        for name in ("crop_to_epithelium", "membrane_white_balance", "stain_gate", "quality_map"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise InvalidInputError(f"ScoreSettings.{name} must be True or False, got {getattr(self, name)!r}")
            object.__setattr__(self, name, bool(getattr(self, name)))
        need = math.ceil(2 * self.cells.max_radius_um / self.mpp - 1e-9)
        if self.overlap < need:
            raise InvalidInputError(
                f"overlap must be >= 2 * cells.max_radius_um / mpp = {need} px for a grid-independent cell "
                f"table, got {self.overlap}; pass ScoreSettings(overlap={need})"
            )
        if not isinstance(self.measurement, MeasurementUncertainty):
            raise InvalidInputError(
                f"ScoreSettings.measurement must be a her2fast.scoring.MeasurementUncertainty, "
                f"got {type(self.measurement).__name__}"
            )
        if self.cells.rules != self.rules:
            raise InvalidInputError(
                "cells.rules and rules differ: the intensity bands of measured cells must be the rules the "
                "slide is scored with; pass ScoreSettings(rules=r, cells=CellSettings(rules=r))"
            )

    def to_dict(self) -> dict:
        """JSON-ready dict of every setting."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ScoreSettings:
        """Inverse of :meth:`to_dict`.

        Settings saved before ``crop_to_epithelium`` existed load with it False, and before
        ``windows_per_tile`` with 1, before ``membrane_white_balance``, ``stain_gate`` and ``quality_map``
        with False, and before ``measurement`` without measurement errors (:data:`NO_MEASUREMENT_ERROR`):
        what they ran with.
        """
        d = dict(d)
        d.setdefault("membrane_white_balance", False)
        d.setdefault("stain_gate", False)
        d.setdefault("quality_map", False)
        d.setdefault("crop_to_epithelium", False)
        d.setdefault("windows_per_tile", 1)
        rules = ScoringRules(**d.pop("rules", {}))
        measurement = MeasurementUncertainty(**d.pop("measurement", asdict(NO_MEASUREMENT_ERROR)))
        cells = dict(d.pop("cells", {}))
        cells.pop("rules", None)
        return cls(
            nuclei=NucleiSettings(**d.pop("nuclei", {})),
            cells=CellSettings(rules=rules, **cells),
            rules=rules,
            measurement=measurement,
            **d,
        )


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ThreadPlan:
    """How the tile stream uses the machine: the one place that sets thread counts.

    The tile phase is a bounded stream: ``readers`` threads read tiles (OpenSlide and JPEG decoding
    release the GIL) into a queue; ``inference_lanes`` threads (the calling thread and
    ``inference_lanes - 1`` more) batch them through the membrane network (ONNX Runtime, GIL released,
    ``inference_threads`` intra-op threads per call); ``post_workers`` threads deconvolve, find nuclei
    and measure cells (native kernels and NumPy, mostly without the GIL). At most ``queue_tiles``
    tiles wait between two stages, so memory stays bounded whatever the slide. The result does not
    depend on the plan (each tile's network pass is its own, whatever batch it shares).

    Parameters
    ----------
    readers : int
        Reader threads (0: read on the calling thread).
    inference_threads : int
        ONNX Runtime intra-op threads per network call.
    post_workers : int
        Post-processing threads (0: on the calling thread, after each batch).
    queue_tiles : int
        Capacity of each queue between stages.
    inference_lanes : int
        Threads running the network at the same time, each on its own batch (1: the calling thread
        only). Concurrent single-threaded calls use cores better than one call with several intra-op
        threads on a small network (no synchronisation inside each layer). Needs ``readers >= 1``
        when > 1.
    """

    readers: int = 1
    inference_threads: int = 1
    post_workers: int = 1
    queue_tiles: int = 8
    inference_lanes: int = 1

    def __post_init__(self) -> None:
        for name, lo in (
            ("readers", 0),
            ("inference_threads", 1),
            ("post_workers", 0),
            ("queue_tiles", 1),
            ("inference_lanes", 1),
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < lo or v > 256:
                raise InvalidInputError(f"ThreadPlan.{name} must be an int in {lo}..256, got {v!r}")
        if self.inference_lanes > 1 and self.readers == 0:
            raise InvalidInputError(
                "ThreadPlan.inference_lanes > 1 needs readers >= 1 (the lanes share the read queue)"
            )

    @classmethod
    def sequential(cls) -> ThreadPlan:
        """Everything on the calling thread, one inference thread (the reference the stream must equal)."""
        return cls(readers=0, inference_threads=1, post_workers=0)

    @classmethod
    def for_machine(cls, cores: int | None = None, *, gpu: bool = False) -> ThreadPlan:
        """The default for ``cores`` CPU cores (default: those this process may run on).

        CPU inference: the network costs about twice the post-processing per tile. Up to four
        inference lanes run the network concurrently (one intra-op thread each, more on large
        machines: half the cores for the network in all), and a post worker per core; the threads
        outnumber the cores and the bounded queues let the OS balance them (measured on 2 cores:
        2 lanes + 2 post workers 5.90 tiles/s of 512^2, against 5.65 for one lane of 2 intra-op threads
        and 4.56 for one lane of one thread with one post worker). One reader (two from 8 cores)
        keeps them fed (a tile reads in ~15 ms).
        GPU inference (``gpu=True``): the network is cheap and the CPU feeds it, so one thread drives
        the GPU and every other core reads (a quarter, at least two) or post-processes.
        """
        n = _available_cores() if cores is None else int(cores)
        if n < 1:
            raise InvalidInputError(f"cores must be >= 1, got {cores!r}")
        if gpu:
            readers = max(2, n // 4)
            return cls(
                readers=readers, inference_threads=1, post_workers=max(1, n - readers - 1), queue_tiles=max(8, 2 * n)
            )
        if n == 1:
            return cls(readers=1, inference_threads=1, post_workers=1)
        lanes = min(n, 4)
        return cls(
            readers=1 if n < 8 else 2, inference_threads=max(1, n // (2 * lanes)), post_workers=n, inference_lanes=lanes
        )

    def to_dict(self) -> dict:
        return asdict(self)
