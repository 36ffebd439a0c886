"""Lab calibration profiles: the scoring thresholds a lab's reference slides were fitted to, and their origin.

A :class:`CalibrationProfile` holds values for some :class:`~her2fast.scoring.ScoringRules` fields (by
default the membrane-OD bands ``faint_od``, ``weak_od``, ``strong_od`` and the completeness threshold
``complete_fraction``; never the ASCO/CAP 10 % rule), and what they are valid for: the models (sha256)
and the her2fast version whose cell measurements they were fitted on, and the measurement settings (the
cell read-out, the membrane method, the working resolution). :meth:`CalibrationProfile.rules` applies it
to a set of rules; :meth:`CalibrationProfile.check_compatible` refuses a run with other models, another
her2fast or other measurement settings, because the OD scale the bands cut would not be the one they were
fitted on.

:func:`rescore_cells` re-scores a stored cell table under other rules without the image: the intensity class
of each cell is recomputed from its measured ``membrane_dab_od`` (completeness does not depend on the
rules), which is what a run with those rules would have measured.

Pure: the profile is read from and written to JSON *text* here; :mod:`her2fast.io.profile` handles files.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace

from ..errors import InvalidInputError, ProfileError
from .rules import DEFAULT_RULES, CellTable, ScoringResult, ScoringRules, intensity_class_from_od, score_cells

__all__ = [
    "PROFILE_FORMAT",
    "PROFILE_FORMAT_VERSION",
    "FITTABLE_FIELDS",
    "DEFAULT_FITTED_FIELDS",
    "MEASUREMENT_KEYS",
    "CalibrationProfile",
    "measurement_settings",
    "rescore_cells",
]

PROFILE_FORMAT = "her2fast-calibration-profile"
PROFILE_FORMAT_VERSION = 1
#: ScoringRules fields a calibration may set: not the ASCO/CAP fractions (``positive_fraction``), not what
#: decides whether a slide is scorable (``min_tumour_cells``) or flagged (``near_cutoff_z``)
FITTABLE_FIELDS: tuple[str, ...] = ("faint_od", "weak_od", "strong_od", "complete_fraction", "ultralow_fraction")
#: what ``her2fast calibrate`` fits unless told otherwise
DEFAULT_FITTED_FIELDS: tuple[str, ...] = ("faint_od", "weak_od", "strong_od", "complete_fraction")
#: the :class:`her2fast.ScoreSettings` entries that decide the cell measurements a profile's thresholds cut
#: (``cells`` without its ``rules``)
MEASUREMENT_KEYS: tuple[str, ...] = ("mpp", "membrane_method", "membrane_white_balance", "nuclei", "cells")


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _plain(value):
    """JSON-ready copy (tuples to lists, numpy scalars to Python numbers)."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def measurement_settings(settings: Mapping) -> dict:
    """The entries of a ``ScoreSettings.to_dict()`` that decide the cell measurements (:data:`MEASUREMENT_KEYS`).

    Parameters
    ----------
    settings : mapping
        ``ScoreSettings.to_dict()``.

    Returns
    -------
    dict
        JSON-ready; ``cells`` without ``rules`` (the thresholds are what a profile changes).
    """
    out = {}
    for key in MEASUREMENT_KEYS:
        if key not in settings:
            continue
        value = settings[key]
        if key == "cells" and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if k != "rules"}
        out[key] = value
    return _plain(out)


def _check_parameters(parameters: Mapping, where: str) -> dict[str, float]:
    if not isinstance(parameters, Mapping) or not parameters:
        raise ProfileError(f"{where}: 'parameters' must be a non-empty object of ScoringRules fields")
    out: dict[str, float] = {}
    for name, value in parameters.items():
        if name not in FITTABLE_FIELDS:
            raise ProfileError(
                f"{where}: parameter {name!r} cannot be calibrated; a profile may set {', '.join(FITTABLE_FIELDS)}"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            raise ProfileError(f"{where}: parameter {name} must be a finite number, got {value!r}")
        out[str(name)] = float(value)
    try:
        replace(DEFAULT_RULES, **out)  # type: ignore[arg-type]  # the names are checked against ScoringRules
    except InvalidInputError as exc:
        raise ProfileError(f"{where}: the parameters do not make valid scoring rules: {exc}") from None
    return out


@dataclass(frozen=True)
class CalibrationProfile:
    """Scoring thresholds fitted to a lab's reference slides, and what they are valid for.

    Parameters
    ----------
    name : str
        Shown in every result's provenance (e.g. the lab and the date).
    parameters : mapping of str to float
        Values of :data:`FITTABLE_FIELDS`; the other rules stay as given to :meth:`rules`.
    models : mapping of str to str
        Model name -> sha256 of the models the reference slides were measured with.
    her2fast_version : str
        The her2fast that measured them.
    measurement : mapping
        :func:`measurement_settings` of the run that measured them.
    created : str
        ISO 8601 time the profile was made.
    reference : mapping
        The reference set: ``file`` (name), ``sha256``, ``bytes``, ``slides``, ``scored``, ``by_score``.
    figures : mapping
        Cross-validated agreement of the profile and of the defaults (:mod:`her2fast.validation.calibrate`).
    defaults : mapping of str to float
        The values the fit started from and was regularised toward.
    warnings : sequence of str
        What the fit warned about (a small or one-sided reference set).
    sha256 : str
        sha256 of the JSON text the profile was read from (:meth:`from_json`), else of :meth:`to_json`.
    """

    name: str
    parameters: Mapping[str, float]
    models: Mapping[str, str]
    her2fast_version: str
    measurement: Mapping = field(default_factory=dict)
    created: str = ""
    reference: Mapping = field(default_factory=dict)
    figures: Mapping = field(default_factory=dict)
    defaults: Mapping[str, float] = field(default_factory=dict)
    warnings: Sequence[str] = ()
    sha256: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ProfileError("a calibration profile needs a non-empty name")
        object.__setattr__(self, "parameters", _check_parameters(self.parameters, f"profile {self.name!r}"))
        if not isinstance(self.models, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.models.items()
        ):
            raise ProfileError(f"profile {self.name!r}: 'models' must map model names to sha256 strings")
        object.__setattr__(self, "models", dict(self.models))
        for name in ("measurement", "reference", "figures", "defaults"):
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise ProfileError(f"profile {self.name!r}: {name!r} must be an object, got {type(value).__name__}")
            object.__setattr__(self, name, _plain(dict(value)))
        object.__setattr__(self, "warnings", tuple(str(w) for w in self.warnings))
        if not self.sha256:
            object.__setattr__(self, "sha256", hashlib.sha256(self.to_json().encode("utf-8")).hexdigest())

    # ------------------------------------------------------------------------------ applying
    def rules(self, base: ScoringRules = DEFAULT_RULES) -> ScoringRules:
        """``base`` with the profile's parameters.

        Examples
        --------
        >>> p = CalibrationProfile(name="lab", parameters={"strong_od": 0.5}, models={}, her2fast_version="0")
        >>> p.rules().strong_od, p.rules().weak_od
        (0.5, 0.15)
        """
        try:
            return replace(base, **self.parameters)  # type: ignore[arg-type]  # names checked on load
        except InvalidInputError as exc:
            raise ProfileError(f"profile {self.name!r} does not fit these rules: {exc}") from None

    def check_compatible(self, models: Mapping[str, str], her2fast_version: str, measurement: Mapping) -> None:
        """Refuse a run whose cell measurements are not those the profile was fitted on.

        Parameters
        ----------
        models : mapping of str to str
            Model name -> sha256 of the run (other keys, e.g. ``settings``, are ignored).
        her2fast_version : str
        measurement : mapping
            :func:`measurement_settings` of the run (or a whole ``ScoreSettings.to_dict()``).

        Raises
        ------
        ProfileError
            Naming what differs and the fix (recalibrate with ``her2fast calibrate``).
        """
        fix = (
            "calibrate again with these models (her2fast calibrate REFERENCE.csv --out DIR), or score without --profile"
        )
        ignore = {"settings", "profile"}
        ours = {k: v for k, v in self.models.items() if k not in ignore}
        theirs = {k: v for k, v in models.items() if k not in ignore}
        if ours != theirs:
            diff = []
            for k in sorted(set(ours) | set(theirs)):
                if ours.get(k) != theirs.get(k):
                    diff.append(
                        f"{k}: profile {(ours.get(k) or 'none')[:12]}, this run {(theirs.get(k) or 'none')[:12]}"
                    )
            raise ProfileError(
                f"calibration profile {self.name!r} (sha256 {self.sha256[:12]}) was made with other models "
                f"({'; '.join(diff)}): its thresholds cut another OD scale; {fix}"
            )
        if self.her2fast_version != her2fast_version:
            raise ProfileError(
                f"calibration profile {self.name!r} was made with her2fast {self.her2fast_version}, this is "
                f"{her2fast_version}: the cell measurements may differ; {fix}"
            )
        mine = measurement_settings(self.measurement) if self.measurement else {}
        run = measurement_settings(measurement)
        if mine and run and mine != run:
            diff = []
            for k in sorted(set(mine) | set(run)):
                a, b = mine.get(k), run.get(k)
                if isinstance(a, Mapping) and isinstance(b, Mapping):
                    diff += [
                        f"{k}.{s}: {a.get(s)!r} -> {b.get(s)!r}"
                        for s in sorted(set(a) | set(b))
                        if a.get(s) != b.get(s)
                    ]
                elif a != b:
                    diff.append(f"{k}: {a!r} -> {b!r}")
            raise ProfileError(
                f"calibration profile {self.name!r} was fitted on cells measured with other settings "
                f"({'; '.join(diff)}); score with the profile's settings or {fix}"
            )

    def provenance(self) -> dict:
        """What a result's provenance records: ``name``, ``sha256``, ``created``, ``parameters``."""
        return {"name": self.name, "sha256": self.sha256, "created": self.created, "parameters": dict(self.parameters)}

    # ------------------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        """JSON-ready dict (without ``sha256``, which is the hash of the text)."""
        d = {
            "format": PROFILE_FORMAT,
            "format_version": PROFILE_FORMAT_VERSION,
            **{f.name: getattr(self, f.name) for f in fields(self) if f.name != "sha256"},
        }
        return _plain(d)

    def to_json(self) -> str:
        """The profile as JSON text (sorted keys, one field per line)."""
        return json.dumps(self.to_dict(), indent=1, sort_keys=True, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "profile") -> CalibrationProfile:
        """Read :meth:`to_json` text; ``source`` names it in errors.

        Raises
        ------
        ProfileError
            Not JSON, not a profile, a newer format, or invalid parameters.
        """
        try:
            d = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise ProfileError(f"{source} is not a her2fast calibration profile (not JSON: {exc})") from None
        if not isinstance(d, dict) or d.get("format") != PROFILE_FORMAT:
            raise ProfileError(
                f'{source} is not a her2fast calibration profile (no "format": "{PROFILE_FORMAT}"); '
                "make one with her2fast calibrate"
            )
        version = d.get("format_version")
        if not isinstance(version, int) or version > PROFILE_FORMAT_VERSION:
            raise ProfileError(
                f"{source}: profile format {version!r} is not one this her2fast reads "
                f"(up to {PROFILE_FORMAT_VERSION}); upgrade her2fast"
            )
        known = {f.name for f in fields(cls)} - {"sha256"}
        missing = [k for k in ("name", "parameters", "models", "her2fast_version") if k not in d]
        if missing:
            raise ProfileError(f"{source}: missing {', '.join(missing)}")
        kwargs = {k: v for k, v in d.items() if k in known}
        try:
            return cls(**kwargs, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())
        except ProfileError as exc:
            raise ProfileError(f"{source}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ProfileError(f"{source}: {exc}") from None


def rescore_cells(cells: CellTable, rules: ScoringRules = DEFAULT_RULES) -> ScoringResult:
    """Score a stored cell table under ``rules``, the intensity classes recomputed from the measured OD.

    Equal to what a run with ``rules`` gives on the same slide: the cells stage sets each cell's
    intensity class from its ``membrane_dab_od`` with the rules' bands
    (:func:`~her2fast.scoring.intensity_class_from_od`), and completeness does not depend on the rules.

    Parameters
    ----------
    cells : CellTable
        A measured table (``.cells.npz`` of a result).
    rules : ScoringRules

    Returns
    -------
    ScoringResult
        Raises :class:`~her2fast.errors.InvalidInputError` without tumour cells.
    """
    table = replace(cells, intensity=intensity_class_from_od(cells.membrane_dab_od, rules))
    return score_cells(table, rules)
