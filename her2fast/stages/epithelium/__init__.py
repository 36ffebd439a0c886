"""Epithelium vs stroma: SLIC superpixels, colour + texture features, an RBF-SVM; which tiles go on.

HER2 is scored on invasive tumour (epithelial) cells only. Following Vandenberghe et al. the slide is cut
into superpixels at a medium resolution, each superpixel is described by colour histograms and a uniform
LBP texture histogram, and an RBF support vector machine says epithelium or stroma. The epithelium mask
then decides which working-resolution tiles go on to membrane segmentation.
"""

from __future__ import annotations

from .features import CLASSES as CLASSES
from .features import COLOUR_HISTOGRAMS as COLOUR_HISTOGRAMS
from .features import EPITHELIUM_CLASS_NAMES as EPITHELIUM_CLASS_NAMES
from .features import (
    EPITHELIUM_MPP,
    MODEL_FORMAT_VERSION,
    Annotation,
    EpitheliumMap,
    EpitheliumModel,
    EpitheliumSettings,
    EpitheliumTiles,
    SuperpixelClassification,
    SuperpixelFeatures,
    TrainingSet,
    annotated_training_set,
    classify_image,
    classify_slide,
    default_model,
    extra_feature_names,
    fit_epithelium_model,
    read_qupath_geojson,
    select_tiles,
    superpixel_features,
    truth_training_set,
)
from .features import STAIN_BINS as STAIN_BINS
from .features import STAIN_OD_MAX as STAIN_OD_MAX
from .features import STROMA_CLASS_NAMES as STROMA_CLASS_NAMES
from .features import WHITE_REFERENCE as WHITE_REFERENCE
from .features import default_gamma as default_gamma
from .features import rasterize_annotations as rasterize_annotations
from .features import superpixel_accuracy as superpixel_accuracy
from .features import white_balanced as white_balanced

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
    "extra_feature_names",
    "fit_epithelium_model",
    "read_qupath_geojson",
    "select_tiles",
    "superpixel_features",
    "truth_training_set",
]
