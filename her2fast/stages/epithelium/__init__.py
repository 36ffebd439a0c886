"""Epithelium vs stroma: SLIC superpixels, colour + texture features, an RBF-SVM; which tiles go on.

HER2 is scored on invasive tumour (epithelial) cells only. Following Vandenberghe et al. the slide is cut
into superpixels at a medium resolution, each superpixel is described by colour histograms and a uniform
LBP texture histogram, and an RBF support vector machine says epithelium or stroma. The epithelium mask
then decides which working-resolution tiles go on to membrane segmentation.

Modules
-------
- :mod:`~her2fast.stages.epithelium.features`: :class:`EpitheliumSettings`, the superpixels of an image
  and their features (:func:`superpixel_features`); the resolution and the features are described there.
- :mod:`~her2fast.stages.epithelium.model`: :class:`EpitheliumModel` (the RBF-SVM as plain arrays, its
  numpy predictor and file format) and :func:`default_model`.
- :mod:`~her2fast.stages.epithelium.classify`: :func:`classify_image`, :func:`classify_slide`
  (:class:`EpitheliumMap`) and :func:`select_tiles` (:class:`EpitheliumTiles`).
- :mod:`~her2fast.stages.epithelium.annotations`: QuPath GeoJSON regions (:func:`read_qupath_geojson`).
- :mod:`~her2fast.stages.epithelium.training`: :class:`TrainingSet`, :func:`truth_training_set`,
  :func:`annotated_training_set` and :func:`fit_epithelium_model`.

Every public name of these modules is importable from ``her2fast.stages.epithelium``.
"""

from __future__ import annotations

from .annotations import EPITHELIUM_CLASS_NAMES as EPITHELIUM_CLASS_NAMES
from .annotations import STROMA_CLASS_NAMES as STROMA_CLASS_NAMES
from .annotations import Annotation, read_qupath_geojson
from .annotations import rasterize_annotations as rasterize_annotations
from .classify import (
    EpitheliumMap,
    EpitheliumTiles,
    SuperpixelClassification,
    classify_image,
    classify_slide,
    epithelium_from_decisions,
    select_tiles,
)
from .features import COLOUR_HISTOGRAMS as COLOUR_HISTOGRAMS
from .features import EPITHELIUM_MPP, EpitheliumSettings, SuperpixelFeatures, extra_feature_names, superpixel_features
from .features import STAIN_BINS as STAIN_BINS
from .features import STAIN_OD_MAX as STAIN_OD_MAX
from .features import WHITE_REFERENCE as WHITE_REFERENCE
from .features import white_balanced as white_balanced
from .model import CLASSES as CLASSES
from .model import MODEL_FORMAT_VERSION, EpitheliumModel, default_model
from .training import TrainingSet, annotated_training_set, fit_epithelium_model, truth_training_set
from .training import default_gamma as default_gamma
from .training import superpixel_accuracy as superpixel_accuracy

__all__ = [
    "EPITHELIUM_MPP",
    "MODEL_FORMAT_VERSION",
    "Annotation",
    "EpitheliumMap",
    "EpitheliumModel",
    "EpitheliumSettings",
    "EpitheliumTiles",
    "SuperpixelClassification",
    "SuperpixelFeatures",
    "TrainingSet",
    "annotated_training_set",
    "classify_image",
    "classify_slide",
    "default_model",
    "epithelium_from_decisions",
    "extra_feature_names",
    "fit_epithelium_model",
    "read_qupath_geojson",
    "select_tiles",
    "superpixel_features",
    "truth_training_set",
]
