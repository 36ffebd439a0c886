"""Options shared by the commands that score slides (``score``, ``evaluate``, ``batch``, ``watch``)."""

from __future__ import annotations

import argparse

__all__ = ["score_profile", "score_settings", "scoring_options"]


def scoring_options(
    p: argparse.ArgumentParser,
    *,
    pictures_help: str = "skip the overlay, zoom and heat-map PNGs",
    profile: bool = True,
    outputs: bool = True,
) -> None:
    """Add the options of every command that scores slides to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The sub-command's parser.
    pictures_help : str
        Help text of ``--no-pictures``.
    profile : bool
        Add ``--profile`` (a calibration profile).
    outputs : bool
        Add ``--no-pictures`` and ``--no-geojson``.
    """
    p.add_argument(
        "--mpp",
        type=float,
        default=None,
        help="um/px of level 0: wins over the metadata and over the estimate of a field without one",
    )
    p.add_argument(
        "--providers",
        default="auto",
        help="ONNX Runtime providers, 'auto' or comma-separated, e.g. CUDAExecutionProvider; or OpenVINO "
        "(her2fast[openvino]) (default: %(default)s)",
    )
    p.add_argument(
        "--method", choices=["unet", "classical"], default="unet", help="membrane segmentation (default: %(default)s)"
    )
    p.add_argument(
        "--whole-tiles",
        action="store_true",
        help="segment whole tiles, not only the windows around their epithelium: the cell table then also "
        "holds the stroma away from the tumour (slower; same tumour cells)",
    )
    if profile:
        p.add_argument(
            "--profile",
            default=None,
            metavar="PROFILE_DIR",
            help="a lab's calibration profile (the folder her2fast calibrate wrote, or its profile.json): its "
            "intensity and completeness thresholds replace the defaults; results name it in their provenance",
        )
    if outputs:
        p.add_argument("--no-pictures", action="store_true", help=pictures_help)
        p.add_argument("--no-geojson", action="store_true", help="skip the QuPath GeoJSON")


def score_settings(args: argparse.Namespace):
    """The :class:`~her2fast.pipeline.ScoreSettings` of a scoring command's options.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options of a parser that :func:`scoring_options` filled.

    Returns
    -------
    ScoreSettings
    """
    from ..pipeline import ScoreSettings

    return ScoreSettings(membrane_method=args.method, crop_to_epithelium=not args.whole_tiles)


def score_profile(args: argparse.Namespace):
    """The calibration profile of ``--profile`` (read once), or None.

    Raises
    ------
    ProfileError
        The profile cannot be read (its compatibility is checked where it is applied).
    """
    if getattr(args, "profile", None) is None:
        return None
    from ..io.profile import load_profile

    return load_profile(args.profile)
