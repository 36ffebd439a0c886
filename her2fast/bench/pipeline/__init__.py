"""``her2fast bench pipeline``: whole-slide throughput against a reference pipeline, in one run.

Ours is :func:`her2fast.score` (the bounded tile stream of :mod:`her2fast.pipeline`). The reference
does the same work on the same slide the obvious way, sequentially, with the libraries such a
pipeline would use:

- epithelium: the slide read at the classifier's resolution, ``skimage.segmentation.slic``,
  ``skimage.feature.local_binary_pattern``, per-superpixel histograms with ``np.bincount`` and the
  RBF-SVM decision with ``sklearn.metrics.pairwise.rbf_kernel``;
- per tile (the same epithelial tiles as ours): OpenSlide read, ``skimage.color.rgb2hed``, the same
  U-Net in PyTorch eager (``training/`` weights; ONNX Runtime when torch or the repository's
  ``training`` package is not available -- said in the output), nuclei with SciPy morphology and
  ``skimage.morphology.h_maxima`` + ``skimage.segmentation.watershed``, cells with
  ``skimage.segmentation.watershed`` + ``skimage.morphology.skeletonize`` + ``np.bincount``.

Ours segments only the window of each tile around its epithelium (``ScoreSettings.crop_to_epithelium``,
the default: the same tumour cells, fewer stromal ones); the reference whole tiles, as a straightforward
pipeline would; with the reference on, ours is also timed on whole tiles after it (the ratio without
the work the windows leave out). ``crop=False`` (``--no-crop``) times ours on whole tiles only.

Each side runs in a process of its own (``python -m her2fast.bench.pipeline --worker``, started by
:func:`main`): ours one per membrane runtime, the reference one for all, so neither side's threads
compete with the other's, and ours closes its membrane session after every run. The sides take turns
``repeats`` times; printed per runtime are the median and min-max of tiles/s of each side (also in
512^2-tile equivalents) and the ratio of the medians, the membrane runtime every run of ours used
(``provenance["providers"]``, and the ``providers="auto"`` probe's figures where it ran), CPU % of the
tile phase and peak RSS of each process, seconds per stage and the projected seconds for a 3,000-tile
slide; with ``providers="all"`` every runtime available here in turn (:func:`runtimes`), against the
same reference process. The reference runs ``reference_tiles`` of the tiles, evenly spaced over them
(its per-tile rate is what is compared), and its slide-level stages once. The CPU model and the flags
that decide the runtimes' speed (:data:`CPU_FLAGS`) are printed and in the JSON.

Modules
-------
- :mod:`~her2fast.bench.pipeline.run`: :func:`main` (the driver).
- :mod:`~her2fast.bench.pipeline.machine`: :data:`CPU_FLAGS`, :func:`cpu_info`, :func:`runtimes`.
- :mod:`~her2fast.bench.pipeline.reference_pipeline`: :func:`reference_epithelium`, :class:`ReferenceTiles`.
- :mod:`~her2fast.bench.pipeline.sides`: ours and the reference, each a side with ``run``.
- :mod:`~her2fast.bench.pipeline.processes`: a side's process (the worker loop, the driver's handle).
- :mod:`~her2fast.bench.pipeline.figures`: :func:`spread`, each runtime's figures.
- :mod:`~her2fast.bench.pipeline.tables`: the printed tables.
- :mod:`~her2fast.bench.pipeline.network`: the network alone under each runtime (``python -m
  her2fast.bench.pipeline network``, with an int8 model directory too).
"""

from __future__ import annotations

from .figures import PROJECT_TILES as PROJECT_TILES
from .figures import spread
from .machine import CPU_FLAGS, cpu_info, runtimes
from .reference_pipeline import ReferenceTiles, reference_epithelium
from .run import main
from .sides import STAGES as STAGES

__all__ = ["CPU_FLAGS", "main", "cpu_info", "reference_epithelium", "ReferenceTiles", "runtimes", "spread"]
