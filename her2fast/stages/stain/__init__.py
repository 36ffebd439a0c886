"""Stain analysis of H-DAB brightfield images: optical density, stain vectors, deconvolution, normalisation.

Beer-Lambert model (the one :mod:`her2fast.synth` renders with)::

    I = I0 * exp(-OD),        OD = c_H * v_H + c_DAB * v_DAB + c_res * v_res

with ``I0`` the glass (background) colour, ``v_*`` unit stain vectors in RGB optical-density space and
``c_*`` stain concentrations. Optical densities here are **natural-log** OD (``ln(I0 / I)``), the unit of
:class:`her2fast.scoring.ScoringRules` and of the phantom ground truth; multiply by ``log10(e) = 0.434``
for decadic OD.

Per slide:

1. :func:`slide_stain_vectors` (or :func:`estimate_stain_vectors` on pixels) estimates the hematoxylin
   and DAB vectors from tissue pixels with Macenko's method [1]_, and falls back -- per vector -- to
   Ruifrok and Johnston's standard vectors [2]_ when the estimate is unreliable (too few stained pixels,
   a single stain, vectors far from any plausible H or DAB); :class:`StainVectors` says which and why.
2. :func:`deconvolve` unmixes a tile into H, DAB and residual concentration maps
   (:class:`StainConcentrations`); ``concentrations.dab`` is the DAB OD later stages measure membrane
   intensity with. It is computed from the *unnormalised* tile with the slide's own vectors:
   normalisation changes the DAB histogram and must not be used for intensity.
3. :func:`normalize_to_reference` matches the histograms of the deconvolved H and DAB channels of a
   tile to those of a reference (:class:`StainReference`, from :func:`stain_reference`) and recomposes
   the tile with the reference's vectors and glass colour, as Vandenberghe et al.'s HER2 pipeline does
   before segmentation.

Modules
-------
- :mod:`~her2fast.stages.stain.density`: :func:`optical_density` (per channel, against the glass colour).
- :mod:`~her2fast.stages.stain.vectors`: :class:`StainVectors`, :func:`estimate_stain_vectors` (Macenko, with
  the Ruifrok-Johnston fallback :data:`STANDARD_HEMATOXYLIN`, :data:`STANDARD_DAB`) and
  :func:`slide_stain_vectors`.
- :mod:`~her2fast.stages.stain.deconvolution`: :func:`deconvolve` (:class:`StainConcentrations`).
- :mod:`~her2fast.stages.stain.normalization`: :class:`StainReference`, :func:`stain_reference` and
  :func:`normalize_to_reference`.

Every public name of these modules is importable from ``her2fast.stages.stain``.

References
----------
.. [1] M. Macenko et al., "A method for normalizing histology slides for quantitative analysis",
       ISBI 2009, 1107-1110. :DOI:`10.1109/ISBI.2009.5193250`
.. [2] A. C. Ruifrok, D. A. Johnston, "Quantification of histochemical staining by color
       deconvolution", Anal. Quant. Cytol. Histol. 23(4), 291-299, 2001.

Examples
--------
>>> import numpy as np
>>> from her2fast.stages.stain import StainVectors, deconvolve
>>> s = StainVectors.standard()
>>> px = np.round(255 * np.exp(-(0.5 * s.hematoxylin + 1.0 * s.dab))).astype(np.uint8).reshape(1, 1, 3)
>>> round(float(deconvolve(px, s).dab[0, 0]), 1)
1.0
"""

from __future__ import annotations

from .deconvolution import StainConcentrations, deconvolve
from .density import optical_density
from .normalization import StainReference, normalize_to_reference, stain_reference
from .vectors import STANDARD_DAB, STANDARD_HEMATOXYLIN, StainVectors, estimate_stain_vectors, slide_stain_vectors

__all__ = [
    "STANDARD_DAB",
    "STANDARD_HEMATOXYLIN",
    "StainConcentrations",
    "StainReference",
    "StainVectors",
    "deconvolve",
    "estimate_stain_vectors",
    "normalize_to_reference",
    "optical_density",
    "slide_stain_vectors",
    "stain_reference",
]
