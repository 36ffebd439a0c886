"""Names, files and arguments that crashed or hung: each gives a her2fast error naming the argument and the fix.

File names that are not UTF-8, FIFOs and devices named like slides, names longer than the file system allows,
a folder or ``/`` as a slide, files that are not slide lists, reference CSVs in other encodings or malformed,
result JSON of the wrong shape, non-finite or huge arguments to the service and the kernels. Cases that could
hang run in a subprocess with a timeout, so a regression fails instead of stopping the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import her2fast
from her2fast.errors import Her2FastError, InvalidInputError, SlideReadError, UnsupportedSlideError

LONG = "x" * 300 + ".tiff"  # longer than the 255 bytes a file name may have
BAD_NAME = b"bad-\xff\xfe.tiff"  # not UTF-8


@pytest.fixture(scope="module")
def slide(tmp_path_factory) -> Path:
    """A 512^2 3+ phantom slide at 0.5 um/px (a few seconds to score with the classical membrane method)."""
    from her2fast.synth import make_slide

    return make_slide(tmp_path_factory.mktemp("names") / "p.tiff", category="3+", width=512, height=512, seed=31).path


def run_cli(*args: str, timeout: float = 240, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``her2fast ARGS`` in a subprocess whose stdout/stderr refuse anything but UTF-8 (as a UTF-8 terminal)."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    return subprocess.run(
        [sys.executable, "-m", "her2fast", *args], capture_output=True, timeout=timeout, cwd=cwd, env=env
    )


def rows_of(db: Path) -> list[dict]:
    from her2fast.io.store import ResultsStore

    with ResultsStore(db) as store:
        return list(store.rows())


# ------------------------------------------------------------------------------------ FIFOs and devices
@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "f.tiff"
    os.mkfifo(path)
    return path


def test_a_fifo_named_like_a_slide_is_refused_without_opening_it(fifo):
    from her2fast.io.slide import open_slide
    from her2fast.io.store import slide_identity

    for call in (lambda: open_slide(fifo), lambda: her2fast.score(fifo, progress=False)):
        with pytest.raises(UnsupportedSlideError, match="not a regular file"):
            call()
    with pytest.raises(InvalidInputError, match="not a regular file"):
        slide_identity(fifo)


def test_score_on_a_fifo_and_a_device_exits_with_an_error(fifo, tmp_path):
    r = run_cli("score", str(fifo), "/dev/zero", "--out", str(tmp_path / "o"), "-q", timeout=120)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert err.count("not a regular file") == 2 and "Traceback" not in err


def test_watch_once_skips_a_fifo_and_ends(fifo, slide, tmp_path):
    import shutil

    shutil.copy(slide, fifo.parent / "good.tiff")
    out = tmp_path / "wo"
    r = run_cli(
        "watch", str(fifo.parent), "--out", str(out), "--once", "--settle", "0", "--poll", "0.2",
        "--no-pictures", "--no-geojson", "--method", "classical",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert [Path(row["slide_path"]).name for row in rows_of(out / "results.db")] == ["good.tiff"]


def test_batch_names_a_fifo_given_as_a_slide_in_its_row(fifo, tmp_path):
    from her2fast.service.batch import find_slides, run_batch

    with pytest.raises(InvalidInputError, match="no slide files found"):  # searching a folder leaves it out
        find_slides(fifo.parent)
    summary = run_batch([str(fifo)], tmp_path / "bo", workers=1, progress=False, pictures=False, geojson=False)
    (row,) = summary.rows
    assert row["status"] == "failed" and "not a regular file" in row["error"]


# ------------------------------------------------------------------------------------ names that are not UTF-8
def test_text_path_escapes_only_what_is_not_utf8():
    from her2fast._files import text_path

    assert text_path("/scans/é-1.svs") == "/scans/é-1.svs"
    assert text_path(os.fsdecode(b"/s/" + BAD_NAME)) == "/s/bad-\\xff\\xfe.tiff"
    assert text_path(b"/s/" + BAD_NAME) == "/s/bad-\\xff\\xfe.tiff"
    assert text_path("\ud800x") == "\\ud800x"
    assert text_path(os.fsdecode(b"a\xff")) != text_path(os.fsdecode(b"a\xfe"))


def test_batch_and_watch_score_a_slide_whose_name_is_not_utf8(slide, tmp_path):
    d = tmp_path / "in"
    (d / "a").mkdir(parents=True)
    (d / "b").mkdir()
    data = slide.read_bytes()
    # the same non-UTF-8 name in two folders (their report names then differ by a hash of the path)
    with open(os.path.join(os.fsencode(d / "a"), BAD_NAME), "wb") as fh:
        fh.write(data)
    with open(os.path.join(os.fsencode(d / "b"), BAD_NAME), "wb") as fh:
        fh.write(data[:-1] + bytes([data[-1] ^ 1]))
    common = ("--no-pictures", "--no-geojson", "--method", "classical")
    r = run_cli("batch", str(d), "--out", str(tmp_path / "bo"), "--workers", "1", *common)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert r.stdout.decode().count("bad-\\xff\\xfe.tiff: ") == 2 and "FAILED" not in r.stdout.decode()
    rows = rows_of(tmp_path / "bo" / "results.db")
    assert len(rows) == 2 and all(row["status"] == "ok" for row in rows)
    assert sorted(row["slide_path"][-len("b/bad-\\xff\\xfe.tiff") :] for row in rows) == [
        "a/bad-\\xff\\xfe.tiff",
        "b/bad-\\xff\\xfe.tiff",
    ]
    assert (tmp_path / "bo" / "results.csv").read_text(encoding="utf-8").count("bad-\\xff\\xfe.tiff") == 2

    r = run_cli("watch", str(d), "--out", str(tmp_path / "wo"), "--once", "--settle", "0", "--poll", "0.2", *common)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    rows = rows_of(tmp_path / "wo" / "results.db")
    assert len(rows) == 2 and all(row["status"] == "ok" for row in rows)
    log = (tmp_path / "wo" / "her2fast-watch.log").read_text(encoding="utf-8")
    assert "Logging error" not in r.stderr.decode() and log.count("scored ") == 2


# ------------------------------------------------------------------------------------ watch arguments
@pytest.mark.parametrize(
    "kw, name",
    [
        (dict(settle=float("inf")), "settle"),
        (dict(settle=float("nan")), "settle"),
        (dict(settle=-1), "settle"),
        (dict(settle=1e12), "settle"),
        (dict(settle="soon"), "settle"),
        (dict(poll=float("inf")), "poll"),
        (dict(poll=0), "poll"),
        (dict(retry_after=float("inf")), "retry_after"),
    ],
)
def test_watch_refuses_non_finite_and_huge_waits(tmp_path, kw, name):
    from her2fast.service.watch import watch

    with pytest.raises(InvalidInputError, match=rf"^{name} must be"):
        watch(tmp_path, tmp_path / "out", once=True, **kw)


def test_watch_settle_inf_once_exits_at_once(tmp_path):
    r = run_cli("watch", str(tmp_path), "--out", str(tmp_path / "o"), "--settle", "inf", "--once", timeout=60)
    assert r.returncode == 1 and "settle must be a finite number" in r.stderr.decode()


# ------------------------------------------------------------------------------------ long names, folders, /
def test_a_300_character_name_is_a_clear_error(tmp_path):
    from her2fast.io.slide import open_slide
    from her2fast.io.store import slide_identity
    from her2fast.service.batch import find_slides

    path = tmp_path / LONG
    with pytest.raises(SlideReadError, match="too long for the file system") as info:
        open_slide(path)
    assert "305 bytes" in str(info.value)
    for call in (lambda: slide_identity(path), lambda: find_slides([str(path)])):
        with pytest.raises(InvalidInputError, match="too long for the file system"):
            call()
    r = run_cli("score", str(path), "--out", str(tmp_path / "o"), "-q", timeout=60)
    assert r.returncode == 1 and "too long for the file system" in r.stderr.decode()


@pytest.mark.parametrize("path", [".", "/", "/tmp"])
def test_a_folder_is_not_a_slide(path):
    from her2fast.io.slide import open_slide

    with pytest.raises(UnsupportedSlideError, match="is a folder"):
        open_slide(path)


@pytest.mark.parametrize("inputs", ["/", "//", "/*", "/**/*.svs", ["/"]])
def test_batch_never_searches_the_whole_file_system(inputs, tmp_path):
    from her2fast.service.batch import find_slides

    with pytest.raises(InvalidInputError, match="whole file system"):
        find_slides(inputs)


def test_watch_never_watches_the_whole_file_system(tmp_path):
    from her2fast.service.watch import watch

    with pytest.raises(InvalidInputError, match="whole file system"):
        watch("/", tmp_path / "out", once=True)


# ------------------------------------------------------------------------------------ slide lists
def test_a_file_that_is_not_a_slide_list_is_never_printed(tmp_path):
    from her2fast.service.batch import find_slides

    secret = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    fake = tmp_path / "passwd"
    fake.write_text(secret)
    candidates = [fake] + [Path("/etc/passwd")] * Path("/etc/passwd").is_file()
    for path in candidates:
        with pytest.raises(InvalidInputError) as info:
            find_slides([str(path)])
        text = str(info.value)
        assert f"{path}: line 1 is" in text and "slide list" in text
        assert "root:" not in text and "/bin/" not in text
    binary = tmp_path / "scan.vsi"  # a slide of a format her2fast does not read
    binary.write_bytes(b"II*\x00" + bytes(range(256)) * 8)
    with pytest.raises(InvalidInputError, match="nor a slide list"):
        find_slides([str(binary)])


def test_a_real_slide_list_still_works(slide, tmp_path):
    from her2fast.service.batch import find_slides

    (tmp_path / "list.txt").write_text(f"# today\n{slide}\n\n")
    assert find_slides([str(tmp_path / "list.txt")]) == [slide]
    (tmp_path / "bad.txt").write_text(f"{slide}\nmissing-folder\n")
    with pytest.raises(InvalidInputError, match=r"bad.txt: line 2 is no slide file or folder"):
        find_slides([str(tmp_path / "bad.txt")])


# ------------------------------------------------------------------------------------ reference CSVs
def _csv(tmp_path: Path, data: bytes, slide: Path) -> Path:
    (tmp_path / "s.tiff").write_bytes(slide.read_bytes()[:64])
    path = tmp_path / "ref.csv"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le+bom", "utf-16-be+bom", "utf-32"])
def test_reference_csv_in_unicode_encodings_with_a_mark_is_read(tmp_path, slide, encoding):
    import codecs

    from her2fast.validation.reference_csv import read_reference_csv

    text = "slide,score\ns.tiff,3+\n"
    if encoding.endswith("+bom"):
        enc = encoding[: -len("+bom")]
        data = (codecs.BOM_UTF16_LE if enc.endswith("le") else codecs.BOM_UTF16_BE) + text.encode(enc)
    else:
        data = text.encode(encoding)
    (row,) = read_reference_csv(_csv(tmp_path, data, slide))
    assert (row.slide, row.score) == ("s.tiff", "3+")


@pytest.mark.parametrize(
    "data, message",
    [
        ("slide,score\ns-é.tiff,3+\n".encode("latin-1"), r"line 2: the file is not UTF-8 text .* save it as UTF-8"),
        ("slide,score\ns.tiff,3+\n".encode("utf-16-le"), r"line 1: a NUL character"),
        (b"slide,score\n" + b"a" * 131_100 + b".tiff,3+\n", r"line \d: not valid CSV \(field larger"),
        (b'slide,score\n"s.tiff,3+\n', r"line 2: unknown score ''"),  # an unclosed quote swallows the rest
        (b"slide,score,score\ns.tiff,3+,0\n", r"line 1: column\(s\) 'score' named more than once"),
        (b"Slide,score,SLIDE\ns.tiff,3+,s.tiff\n", r"column\(s\) 'slide' named more than once"),
        (b"slide,score\n.,3+\n", r"line 2: the slide .* is a folder"),
        (b"slide,score\n/,3+\n", r"line 2: the slide / is a folder"),
        (b"slide,score\n" + LONG.encode() + b",3+\n", r"line 2: .*too long for the file system"),
    ],
)
def test_reference_csv_problems_name_the_line_and_the_fix(tmp_path, slide, data, message):
    from her2fast.validation.reference_csv import read_reference_csv

    with pytest.raises(InvalidInputError, match=message):
        read_reference_csv(_csv(tmp_path, data, slide))


def test_reference_csv_that_is_a_fifo_folder_or_huge_is_refused(tmp_path, monkeypatch):
    import her2fast.validation.reference_csv as ref

    os.mkfifo(tmp_path / "ref.csv")
    with pytest.raises(InvalidInputError, match="not a regular file"):
        ref.read_reference_csv(tmp_path / "ref.csv")
    with pytest.raises(InvalidInputError, match="is a folder"):
        ref.read_reference_csv(tmp_path)
    (tmp_path / "big.csv").write_bytes(b"slide,score\n" + b"x.tiff,0\n" * 200)
    monkeypatch.setattr(ref, "MAX_REFERENCE_BYTES", 1000)
    with pytest.raises(InvalidInputError, match="MAX_REFERENCE_BYTES"):
        ref.read_reference_csv(tmp_path / "big.csv")


def test_evaluate_on_a_latin1_csv_exits_1_without_a_traceback(tmp_path, slide):
    path = _csv(tmp_path, "slide,score\ns-é.tiff,3+\n".encode("latin-1"), slide)
    r = run_cli("evaluate", str(path), "--out", str(tmp_path / "o"), "-q", timeout=120)
    assert r.returncode == 1 and "save it as UTF-8" in r.stderr.decode() and "Traceback" not in r.stderr.decode()


# ------------------------------------------------------------------------------------ providers, result JSON
@pytest.mark.parametrize("providers", [123, [1], {"CPUExecutionProvider"}, None, b"auto", 1.5])
def test_providers_of_the_wrong_type_are_named(slide, providers):
    from her2fast.stages import membrane

    for call in (
        lambda: her2fast.score(slide, providers=providers, progress=False),
        lambda: membrane.predict(np.zeros((8, 8, 3), np.uint8), 0.5, providers=providers),
        lambda: membrane.uses_gpu(providers),
    ):
        with pytest.raises(InvalidInputError, match=r"^providers must be 'auto' or a list of provider names"):
            call()


@pytest.fixture(scope="module")
def result_dict(slide) -> dict:
    from her2fast.pipeline import ScoreSettings

    return her2fast.score(slide, progress=False, settings=ScoreSettings(membrane_method="classical")).to_dict()


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(cells={"bogus": [1]}), "unknown cell column"),
        (dict(cells={"x": "abc"}), "cell column 'x' must be a list of numbers"),
        (dict(cells={"x": [[1]]}), "cell column 'x' must be a list of numbers"),
        (dict(cells={"x": [1.0, 2.0], "y": [1.0]}), "lacks column"),
        (dict(cells=[1, 2]), "field 'cells' must be dict"),
        (dict(percentages=5), "field 'percentages' must be dict"),
        (dict(flags="near_cutoff"), "field 'flags' must be list"),
        (dict(score=3), "field 'score' must be str or null"),
        (dict(format_version="1"), "format_version must be an integer"),
        (dict(format_version=99), "newer than this her2fast reads"),
    ],
)
def test_from_json_with_a_bad_field_names_it(result_dict, change, message):
    from her2fast.api import SlideResult

    with pytest.raises(InvalidInputError, match=message):
        SlideResult.from_json(json.dumps({**result_dict, **change}))


def test_from_json_with_columns_of_different_lengths_and_missing_fields(result_dict):
    from her2fast.api import SlideResult

    cells = dict(result_dict["cells"])
    assert len(cells["x"]) > 1
    cells["x"] = cells["x"][:-1]
    with pytest.raises(InvalidInputError, match="CellTable.x must be a 1-D array"):
        SlideResult.from_json(json.dumps({**result_dict, "cells": cells}))
    for key in ("path", "timings", "counts"):
        d = {k: v for k, v in result_dict.items() if k != key}
        with pytest.raises(InvalidInputError, match=f"missing field.*{key}"):
            SlideResult.from_dict(d)
    back = SlideResult.from_json(json.dumps(result_dict))  # the good one still reads
    assert back.score == result_dict["score"] and len(back.cells) == len(result_dict["cells"]["x"])


# ------------------------------------------------------------------------------------ kernel arguments
IMG = np.full((32, 32, 3), 128, np.uint8)


def _kernel_cases():
    from her2fast.stages import membrane
    from her2fast.stages.superpixels import slic, superpixel_features
    from her2fast.stages.texture import local_binary_pattern

    zeros = np.zeros((32, 32), np.int32)
    huge = zeros.copy()
    huge[0, 0] = 2**31 - 2
    return [
        ("n_segments=2**31", lambda: slic(IMG, n_segments=2**31), "n_segments must be in 1..2147483647"),
        ("n_segments=1e9", lambda: slic(IMG, n_segments=1e9), "n_segments must be an integer"),
        ("max_iter=2**31", lambda: slic(IMG, max_iter=2**31), "max_iter must be in 1..1000"),
        ("max_num_iter=2**31", lambda: slic(IMG, max_num_iter=2**31), "max_num_iter must be in 1..1000"),
        ("lbp R=1001", lambda: local_binary_pattern(IMG[..., 0], R=1001), "R must be at most 1000"),
        ("lbp R=inf", lambda: local_binary_pattern(IMG[..., 0], R=float("inf")), "R must be finite"),
        ("features R=1001", lambda: superpixel_features(IMG, zeros, R=1001), "R must be at most 1000"),
        ("labels up to 2**31-2", lambda: superpixel_features(IMG, huge), "MAX_FEATURE_LABELS.*relabel_sequential"),
        ("n_labels=10**8", lambda: superpixel_features(IMG, zeros, n_labels=10**8), "n_labels must be at most"),
        ("n_labels=2**40", lambda: superpixel_features(IMG, zeros, n_labels=2**40), "n_labels must be at most"),
        ("predict mpp=1e9", lambda: membrane.predict(IMG, mpp=1e9), "mpp=1e\\+09 um/px is not a brightfield"),
        ("predict mpp=1e-9", lambda: membrane.predict(IMG, mpp=1e-9), "is not a brightfield image resolution"),
        ("predict mpp=nan", lambda: membrane.predict(IMG, mpp=float("nan")), "mpp must be finite"),
        (
            "predict_maps_batch mpp=1e9",
            lambda: membrane.predict_maps_batch([IMG], mpp=1e9),
            "is not a brightfield image resolution",
        ),
        (
            "classical mpp=1e9",
            lambda: membrane.predict(IMG, mpp=1e9, method="classical"),
            "is not a brightfield image resolution",
        ),
        (
            "predict huge at the network's resolution",
            lambda: membrane.predict(np.zeros((4096, 4096, 3), np.uint8), mpp=20.0),
            "MAX_NETWORK_PIXELS",
        ),
    ]


@pytest.mark.parametrize("case", range(16))
def test_kernel_arguments_are_checked_before_the_kernel_runs(case):
    import tracemalloc

    name, call, message = _kernel_cases()[case]
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInputError, match=message):
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200 << 20, f"{name}: {peak / 1e6:.0f} MB traced before the error"


def test_more_segments_than_pixels_cost_no_more_than_one_per_pixel():
    from her2fast.stages.superpixels import slic

    labels = slic(IMG, n_segments=2**31 - 1)
    assert labels.shape == IMG.shape[:2] and labels.max() < IMG.shape[0] * IMG.shape[1]


def test_every_error_above_is_a_her2fast_error():
    assert issubclass(InvalidInputError, Her2FastError) and issubclass(UnsupportedSlideError, Her2FastError)
    assert len(_kernel_cases()) == 16
