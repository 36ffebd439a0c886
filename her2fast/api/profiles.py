"""The models a run uses (:func:`run_models`) and a calibration profile checked against them and put into the
run's settings (:func:`apply_profile`).

Examples
--------
>>> from her2fast.pipeline import ScoreSettings
>>> sorted(run_models(ScoreSettings(membrane_method="classical")))
['epithelium_svm']
"""

from __future__ import annotations

from .. import __version__
from ..errors import InvalidInputError
from ..pipeline import ScoreSettings
from ..scoring import CalibrationProfile

__all__ = ["apply_profile", "run_models"]


def run_models(settings: ScoreSettings | None = None) -> dict[str, str]:
    """Model name -> sha256 of the models a run with ``settings`` uses (the epithelium classifier, and the
    membrane U-Net for ``membrane_method="unet"``).

    Raises
    ------
    ModelError
        A model is missing or corrupt.
    """
    from ..stages.epithelium import default_model

    settings = ScoreSettings() if settings is None else settings
    models = {"epithelium_svm": default_model().sha256}
    if settings.membrane_method == "unet":
        from ..stages.membrane import load_model_config

        models["membrane_unet"] = load_model_config().sha256
    return models


def apply_profile(profile, settings: ScoreSettings | None = None) -> tuple[ScoreSettings, CalibrationProfile]:
    """Check a calibration profile against a run's models and settings, and put its thresholds in the settings.

    Parameters
    ----------
    profile : CalibrationProfile, str or Path
        A profile, a folder ``her2fast calibrate`` wrote, or its ``profile.json``.
    settings : ScoreSettings, optional
        The run's settings (default ``ScoreSettings()``); the profile's parameters replace those fields of
        ``settings.rules`` (and of ``settings.cells.rules``).

    Returns
    -------
    (ScoreSettings, CalibrationProfile)

    Raises
    ------
    ProfileError
        The profile cannot be read, or was made with other models, another her2fast or other
        measurement settings (:meth:`~her2fast.scoring.CalibrationProfile.check_compatible`).
    """
    from dataclasses import replace

    from ..io.profile import load_profile

    settings = ScoreSettings() if settings is None else settings
    if not isinstance(settings, ScoreSettings):
        raise InvalidInputError(f"settings must be a her2fast.ScoreSettings, got {type(settings).__name__}")
    prof = load_profile(profile)
    prof.check_compatible(run_models(settings), __version__, settings.to_dict())
    rules = prof.rules(settings.rules)
    return replace(settings, rules=rules, cells=replace(settings.cells, rules=rules)), prof
