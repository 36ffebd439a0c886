"""Calibration profiles on disk: ``PROFILE_DIR/profile.json`` (:class:`her2fast.scoring.CalibrationProfile`).

``her2fast score --profile PROFILE_DIR`` (and ``batch``, ``watch``, ``evaluate``) take the folder that
``her2fast calibrate`` wrote, or the ``profile.json`` file itself.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import ProfileError
from ..scoring.profile import CalibrationProfile

__all__ = ["PROFILE_FILE", "MAX_PROFILE_BYTES", "load_profile", "profile_path", "save_profile"]

#: the profile's file name inside a profile folder
PROFILE_FILE = "profile.json"
#: a profile is a few kilobytes; anything larger is not one
MAX_PROFILE_BYTES = 1 << 20


def profile_path(path: str | os.PathLike) -> Path:
    """The profile file of a profile folder (``PROFILE_DIR/profile.json``), or the file itself."""
    p = Path(path)
    return p / PROFILE_FILE if p.is_dir() else p


def load_profile(path: str | os.PathLike | CalibrationProfile) -> CalibrationProfile:
    """Read a calibration profile from a profile folder or its ``profile.json``.

    Parameters
    ----------
    path : str, PathLike or CalibrationProfile
        A folder ``her2fast calibrate`` wrote, or the JSON file; a profile object is returned as it is.

    Returns
    -------
    CalibrationProfile
        With ``sha256`` the hash of the file's bytes.

    Raises
    ------
    ProfileError
        The file is missing, too large, unreadable or not a profile (the message names it).
    """
    if isinstance(path, CalibrationProfile):
        return path
    if not isinstance(path, (str, os.PathLike)):
        raise ProfileError(f"profile must be a folder, a profile.json path or a CalibrationProfile, got {path!r}")
    file = profile_path(path)
    try:
        size = file.stat().st_size
    except FileNotFoundError:
        raise ProfileError(
            f"calibration profile not found: {file} (give the folder her2fast calibrate wrote, or its {PROFILE_FILE})"
        ) from None
    except OSError as exc:
        raise ProfileError(f"cannot read calibration profile {file}: {exc}") from None
    if size > MAX_PROFILE_BYTES:
        raise ProfileError(f"{file} is {size} bytes: not a calibration profile (at most {MAX_PROFILE_BYTES})")
    try:
        data = file.read_bytes()
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"cannot read calibration profile {file}: {exc}") from None
    return CalibrationProfile.from_json(text, source=str(file))


def save_profile(profile: CalibrationProfile, folder: str | os.PathLike) -> Path:
    """Write ``folder/profile.json`` atomically (a temporary file renamed into place); returns its path.

    The written file hashes to ``profile.sha256`` when read back only if ``profile`` came from
    :meth:`CalibrationProfile.to_json` text; :func:`load_profile` of the written file gives the hash
    that results record.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    dest = out / PROFILE_FILE
    fd, tmp = tempfile.mkstemp(prefix=".profile-", suffix=".json", dir=out)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(profile.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest
