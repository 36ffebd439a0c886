"""The reference CSV of ``her2fast evaluate``: one lab score per slide, read and checked line by line.

Columns ``slide,score[,percent_complete][,ish]`` (header row, any order, case-insensitive): the slide path
(relative paths resolve against the CSV's folder), an ASCO/CAP score or clinical group word
(:func:`her2fast.validation.summary.normalise_score`), optionally the % of tumour cells with complete
membrane staining and the ISH result (``amplified`` / ``not amplified``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInputError
from .summary import normalise_score

__all__ = ["ReferenceRow", "read_reference_csv"]

_ISH_WORDS = {
    "amplified": True,
    "positive": True,
    "not amplified": False,
    "non-amplified": False,
    "not-amplified": False,
    "negative": False,
}


@dataclass(frozen=True)
class ReferenceRow:
    """One line of a reference CSV."""

    line: int  #: line number in the file (header = 1)
    slide: str  #: slide path as written (relative paths resolve against the CSV's folder)
    score: str  #: canonical score or group word
    percent_complete: float | None = None  #: % tumour cells with complete membrane staining
    ish_amplified: bool | None = None


def read_reference_csv(path: str | Path, *, check_files: bool = True) -> list[ReferenceRow]:
    """Read ``slide,score[,percent_complete][,ish]`` rows; errors name the line and the problem.

    Parameters
    ----------
    path : str or Path
        CSV with a header row holding at least ``slide`` and ``score``.
    check_files : bool, optional
        Check that every slide file exists (relative paths are taken relative to the CSV).

    Raises
    ------
    InvalidInputError
        Missing file or column, an unknown score or ISH word, a percentage outside 0..100, a slide
        listed twice or missing on disk -- naming the file, the line and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"reference CSV not found: {path}")
    try:
        return _read(path, check_files)
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save the CSV as UTF-8 (CSV UTF-8 in Excel)"
        ) from None
    except csv.Error as exc:
        raise InvalidInputError(
            f"{path}: not a readable CSV file ({exc}); save it as plain comma-separated text"
        ) from None


def _read(path: Path, check_files: bool) -> list[ReferenceRow]:
    rows: list[ReferenceRow] = []
    seen: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        missing = [c for c in ("slide", "score") if c not in header]
        if missing:
            raise InvalidInputError(
                f"{path}: line 1: missing column(s) {', '.join(missing)}; the header must name "
                f"slide,score[,percent_complete][,ish], got {reader.fieldnames}"
            )
        for i, raw in enumerate(reader, start=2):
            rec = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
            where = f"{path}: line {i}"
            slide = rec.get("slide", "")
            if not slide:
                raise InvalidInputError(f"{where}: empty slide name")
            try:
                score = normalise_score(rec.get("score", ""))
            except InvalidInputError as exc:
                raise InvalidInputError(f"{where}: {exc}") from None
            pc = None
            if rec.get("percent_complete"):
                try:
                    pc = float(rec["percent_complete"].rstrip("%"))
                except ValueError:
                    raise InvalidInputError(
                        f"{where}: percent_complete {rec['percent_complete']!r} is not a number"
                    ) from None
                if not 0.0 <= pc <= 100.0:
                    raise InvalidInputError(f"{where}: percent_complete {pc} is outside 0..100")
            ish = None
            if rec.get("ish"):
                word = rec["ish"].lower()
                if word not in _ISH_WORDS:
                    raise InvalidInputError(f"{where}: ish {rec['ish']!r} is not one of amplified / not amplified")
                ish = _ISH_WORDS[word]
            if slide in seen:
                raise InvalidInputError(f"{where}: slide {slide!r} already listed on line {seen[slide]}")
            seen[slide] = i
            if check_files:
                file = Path(slide) if Path(slide).is_absolute() else path.parent / slide
                if not file.exists():
                    raise InvalidInputError(f"{where}: slide file not found: {file}")
            rows.append(ReferenceRow(line=i, slide=slide, score=score, percent_complete=pc, ish_amplified=ish))
    if not rows:
        raise InvalidInputError(f"{path}: no rows after the header")
    return rows
