"""How cell classes look in reports: their QuPath class names and colours.

Shared by the GeoJSON export, the pictures and the review viewer.
"""

from __future__ import annotations

from ...scoring import CellClass

__all__ = ["CLASS_COLOURS", "CLASS_NAMES", "NON_TUMOUR"]


#: QuPath class name of each :class:`~her2fast.scoring.CellClass`.
CLASS_NAMES = {
    CellClass.NEGATIVE: "HER2 negative",
    CellClass.FAINT_INCOMPLETE: "HER2 faint incomplete",
    CellClass.WEAK_MODERATE_COMPLETE: "HER2 weak-moderate complete",
    CellClass.INTENSE_INCOMPLETE: "HER2 intense incomplete",
    CellClass.INTENSE_COMPLETE: "HER2 intense complete",
}
#: Colour (RGB) of each class in pictures and in QuPath.
CLASS_COLOURS = {
    CellClass.NEGATIVE: (60, 110, 230),
    CellClass.FAINT_INCOMPLETE: (235, 215, 40),
    CellClass.WEAK_MODERATE_COMPLETE: (245, 140, 30),
    CellClass.INTENSE_INCOMPLETE: (190, 50, 200),
    CellClass.INTENSE_COMPLETE: (220, 25, 25),
}
#: Class name and colour of cells outside the epithelium (not scored).
NON_TUMOUR = ("Non-tumour", (150, 150, 150))
_EPITHELIUM = ("Tumor", (200, 0, 0))
