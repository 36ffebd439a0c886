"""How sure a slide's category is from the sampling of its cells: the distance of its class fractions from
the nearest threshold, in standard errors (:func:`slide_confidence`, :class:`SlideConfidence`).

Examples
--------
>>> round(_normal_cdf(0.0), 2), round(_normal_cdf(1.96), 3)
(0.5, 0.975)
"""

from __future__ import annotations

from dataclasses import dataclass

from .classes import DEFAULT_RULES, ScoringRules
from .fractions import ClassFractions, slide_category

__all__ = ["SlideConfidence", "slide_confidence"]


@dataclass(frozen=True)
class SlideConfidence:
    """How far a slide's category is from changing, under the sampling uncertainty of its cell counts.

    Attributes
    ----------
    margin_z : float
        Distance of the nearest deciding criterion from its threshold, in binomial standard errors
        (``inf`` when no criterion applies, e.g. no staining on a null slide).
    nearest : str
        The category on the other side of that threshold (e.g. ``"3+"`` for a 2+ slide whose 3+
        criterion is close), or ``""``.
    confidence : float
        ``Phi(margin_z)`` (standard normal CDF), in [0.5, 1]: the one-sided probability that the true
        fraction is on the observed side of the nearest threshold.
    flags : tuple of str
        ``"near_cutoff"`` (margin_z < ``rules.near_cutoff_z``), ``"few_cells"`` (fewer than
        ``rules.min_tumour_cells`` tumour cells), ``"unusual_pattern"`` (2+ only through intense
        incomplete staining), ``"no_tumour_cells"``.
    """

    margin_z: float
    nearest: str
    confidence: float
    flags: tuple[str, ...]


def _normal_cdf(z: float) -> float:
    import math

    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0))) if math.isfinite(z) else (1.0 if z > 0 else 0.0)


def slide_confidence(fractions: ClassFractions, rules: ScoringRules = DEFAULT_RULES) -> SlideConfidence:
    """Margin of the slide category to its nearest cut-off, in binomial standard errors, and flags.

    The category is decided by a cascade of criteria (3+: intense complete > p; 2+: classes 2-4 > p;
    1+: any staining > p; ultralow: any staining > ``rules.ultralow_fraction``). It changes when the
    criterion that decided it falls to its threshold or a higher one rises to its threshold, so only
    those are *deciding*. For each, with ``f`` the observed fraction of ``n`` tumour cells and ``t`` its
    threshold, ``z = (f - t) / sqrt(t (1 - t) / n)`` (a one-sample binomial z); for a null/ultralow line
    at ``t = 0`` the count of stained cells ``k`` gives ``z = sqrt(k)`` (Poisson). ``margin_z`` is the
    smallest ``|z|``; ``confidence = Phi(margin_z)``.

    Parameters
    ----------
    fractions : ClassFractions
    rules : ScoringRules
        ``positive_fraction``, ``ultralow_fraction``, ``near_cutoff_z``, ``min_tumour_cells``.

    Returns
    -------
    SlideConfidence

    Examples
    --------
    >>> import numpy as np
    >>> from her2fast.scoring import class_fractions
    >>> c = slide_confidence(class_fractions(np.array([4] * 105 + [0] * 895)))  # 10.5 % 3+ cells
    >>> c.nearest, round(c.margin_z, 2), c.flags
    ('2+', 0.53, ('near_cutoff',))
    """
    import math

    n = fractions.n_tumour_cells
    if n == 0:
        return SlideConfidence(margin_z=0.0, nearest="", confidence=0.5, flags=("no_tumour_cells",))
    p = rules.positive_fraction
    u = rules.ultralow_fraction
    k_stained = int(round(fractions.at_least_faint * n))

    def z_of(f: float, thr: float) -> float:
        if 0.0 < thr < 1.0:
            return (f - thr) / math.sqrt(thr * (1.0 - thr) / n)
        return math.sqrt(k_stained) if k_stained else -math.inf  # a line at 0: Poisson on the count

    # (criterion holds, z, category above the line, category below it), in cascade order
    lines = [
        (fractions.intense_complete > p, z_of(fractions.intense_complete, p), "3+", "2+"),
        (fractions.at_least_weak_complete > p, z_of(fractions.at_least_weak_complete, p), "2+", "1+"),
        (fractions.at_least_faint > p, z_of(fractions.at_least_faint, p), "1+", "0+"),
        (fractions.at_least_faint > u, z_of(fractions.at_least_faint, u), "0+", "0"),
    ]
    margin, nearest = math.inf, ""
    for holds, z, above, below in lines:
        if math.isfinite(z) and abs(z) <= margin:  # ties: the lower line (the nearer category)
            margin, nearest = abs(z), (below if holds else above)
        if holds:
            break  # lower criteria cannot change the category
    flags = []
    if margin < rules.near_cutoff_z:
        flags.append("near_cutoff")
    if n < rules.min_tumour_cells:
        flags.append("few_cells")
    if (
        slide_category(fractions, rules) == "2+"
        and fractions.at_least_weak_complete - fractions.intense_incomplete <= p
    ):
        flags.append("unusual_pattern")
    return SlideConfidence(margin_z=margin, nearest=nearest, confidence=_normal_cdf(margin), flags=tuple(flags))
