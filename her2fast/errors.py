"""her2fast's exceptions: one base class, one subclass per kind of failure.

Every error her2fast raises on purpose derives from :class:`Her2FastError`, so a caller can catch
all of them at once. Errors about argument values (wrong dtype, shape, range) are ``ValueError``
as NumPy users expect; :class:`InvalidInputError` is both.
"""

from __future__ import annotations

__all__ = [
    "Her2FastError",
    "InvalidInputError",
    "SlideReadError",
    "SlideNotFoundError",
    "UnsupportedSlideError",
    "SlideTooLargeError",
    "MissingResolutionError",
    "NotBrightfieldError",
    "ModelError",
    "MissingExtraError",
    "ProfileError",
    "OutputError",
    "SlideChangedError",
]


class Her2FastError(Exception):
    """Base class of every error her2fast raises on purpose."""


class InvalidInputError(Her2FastError, ValueError):
    """An argument has the wrong type, shape, dtype or value; the message names it and the fix."""


class SlideReadError(Her2FastError):
    """A slide file is missing, unsupported or corrupt; the message names the file."""


class SlideNotFoundError(SlideReadError, FileNotFoundError):
    """The slide path does not exist (also a ``FileNotFoundError``)."""


class UnsupportedSlideError(SlideReadError):
    """The file is not a format her2fast can read (unrecognised, unsupported compression, corrupt header)."""


class SlideTooLargeError(UnsupportedSlideError):
    """A slide declares more pixels than one read may decode (a decompression bomb, or a huge unpyramided image).

    The message names the file, the declared size, the limit and the fix.
    """


class MissingResolutionError(Her2FastError):
    """A slide carries no microns-per-pixel; pass ``mpp=`` explicitly."""


class NotBrightfieldError(Her2FastError):
    """The slide is not a brightfield (transmitted-light) image, e.g. a fluorescence scan; it cannot be scored."""


class ModelError(Her2FastError):
    """A shipped or user-supplied model is missing, corrupt or incompatible."""


class MissingExtraError(Her2FastError, ImportError):
    """A feature needs an optional dependency that is not installed (the message names the pip extra)."""


class ProfileError(Her2FastError):
    """A calibration profile cannot be read, or was made for other models, another her2fast or other
    measurement settings than the run it is given to; the message names the file and the fix."""


class OutputError(Her2FastError):
    """An output cannot be written where it would go (it would replace an input, or no free name is left).

    The message names the file and the fix.
    """


class SlideChangedError(SlideReadError):
    """The slide file changed (rewritten or replaced) while it was read; score it again once it is complete."""
