"""The reference CSV of ``her2fast evaluate``: one lab score per slide, read and checked line by line.

Columns ``slide,score[,percent_complete][,ish]`` (header row, any order, case-insensitive): the slide path
(relative paths resolve against the CSV's folder), an ASCO/CAP score or clinical group word
(:func:`her2fast.validation.summary.normalise_score`), optionally the % of tumour cells with complete
membrane staining and the ISH result (``amplified`` / ``not amplified``).
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .._files import os_error_text
from ..errors import InvalidInputError
from .summary import normalise_score

__all__ = ["MAX_REFERENCE_BYTES", "ReferenceRow", "read_reference_csv"]

#: Largest reference CSV read (bytes); a CSV of slide names and scores is a few kB per thousand slides.
MAX_REFERENCE_BYTES = 64 << 20

_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SAVE_AS = 'save it as UTF-8 ("CSV UTF-8" in Excel, "Unicode (UTF-8)" in LibreOffice)'

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
    text = _read_text(path)
    rows: list[ReferenceRow] = []
    seen: dict[str, int] = {}
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        rows = _read_rows(reader, path, check_files, seen)
    except csv.Error as exc:
        raise InvalidInputError(
            f"{path}: line {reader.line_num}: not valid CSV ({exc}): an unclosed quote, or a field longer than "
            f"{csv.field_size_limit()} characters; fix the line (slide,score[,percent_complete][,ish])"
        ) from None
    if not rows:
        raise InvalidInputError(f"{path}: no rows after the header")
    return rows


def _read_text(path: Path) -> str:
    """The CSV's text: a regular file of at most MAX_REFERENCE_BYTES, UTF-8 or BOM-marked UTF-16/32."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InvalidInputError(f"reference CSV not found: {path}") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read the reference CSV {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        what = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a FIFO, device or socket)"
        raise InvalidInputError(f"reference CSV {path} is {what}; pass a .csv file")
    if st.st_size > MAX_REFERENCE_BYTES:
        raise InvalidInputError(
            f"reference CSV {path} is {st.st_size / 1e6:.0f} MB, more than a list of slides and scores can be "
            f"(limit {MAX_REFERENCE_BYTES >> 20} MiB, her2fast.validation.reference_csv.MAX_REFERENCE_BYTES)"
        )
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_REFERENCE_BYTES + 1)
    except OSError as exc:
        raise InvalidInputError(f"cannot read the reference CSV {path}: {exc.strerror or exc}") from None
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInputError(
            f"{path}: line {line}: the file is not {encoding.upper().replace('-SIG', '')} text (byte "
            f"{data[exc.start : exc.start + 1]!r} at offset {exc.start}; Latin-1 or Windows-1252 perhaps); {_SAVE_AS}"
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise InvalidInputError(
            f"{path}: line {line}: a NUL character: this is a binary file, or UTF-16 text without a byte-order "
            f"mark; {_SAVE_AS}"
        )
    return text


def _read_rows(reader: csv.DictReader, path: Path, check_files: bool, seen: dict[str, int]) -> list[ReferenceRow]:
    rows: list[ReferenceRow] = []
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        raise InvalidInputError(
            f"{path}: line 1: column(s) {', '.join(repr(h) for h in twice)} named more than once in the header "
            f"{reader.fieldnames}; keep one of each (which one holds the reference score is ambiguous)"
        )
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
            _check_slide_file(Path(slide) if Path(slide).is_absolute() else path.parent / slide, where)
        rows.append(ReferenceRow(line=i, slide=slide, score=score, percent_complete=pc, ish_amplified=ish))
    return rows


def _check_slide_file(file: Path, where: str) -> None:
    """A slide of the CSV must be a regular file: a folder (``.``, ``/``) would be searched as a batch."""
    try:
        st = os.stat(file)
    except FileNotFoundError:
        raise InvalidInputError(f"{where}: slide file not found: {file}") from None
    except OSError as exc:
        raise InvalidInputError(f"{where}: {os_error_text(file, exc)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InvalidInputError(
            f"{where}: the slide {file} is a folder; each row names one slide file (for a DICOM series, one of "
            "its .dcm files; for MRXS, the .mrxs file)"
        )
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInputError(f"{where}: the slide {file} is not a regular file (a FIFO, device or socket)")
