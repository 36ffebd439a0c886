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
    "MissingResolutionError",
    "ModelError",
]


class Her2FastError(Exception):
    """Base class of every error her2fast raises on purpose."""


class InvalidInputError(Her2FastError, ValueError):
    """An argument has the wrong type, shape, dtype or value; the message names it and the fix."""


class SlideReadError(Her2FastError):
    """A slide file is missing, unsupported or corrupt; the message names the file."""


class MissingResolutionError(Her2FastError):
    """A slide carries no microns-per-pixel; pass ``mpp=`` explicitly."""


class ModelError(Her2FastError):
    """A shipped or user-supplied model is missing, corrupt or incompatible."""
