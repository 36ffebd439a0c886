"""Outputs are never mixed up, overwritten or written outside the output folder.

Report names are claimed by content (two slides of one file name never share one, even when two processes
write at once), every file is written atomically and never through a link or onto an input, a slide that
changes while it is scored publishes nothing, and a store row and its files describe the same slide bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from her2fast import OutputError, SlideChangedError
from her2fast._files import atomic_write_text, file_sha256, input_keys
from her2fast.io.store import ResultsStore, slide_identity
from her2fast.service.publish import publish_report, report_owner
from her2fast.service.slide_jobs import score_one

SIZE = 512


@pytest.fixture(scope="module")
def slides(tmp_path_factory) -> dict[str, Path]:
    """Two phantoms of different content, both named x.tiff, in folders a/ and b/."""
    from her2fast.synth import make_slide

    root = tmp_path_factory.mktemp("out_slides")
    made = {}
    for folder, category, seed in (("a", "1+", 11), ("b", "3+", 12)):
        (root / folder).mkdir()
        made[folder] = make_slide(root / folder / "x.tiff", category=category, width=SIZE, height=SIZE, seed=seed).path
    return made


@pytest.fixture(scope="module")
def scored(slides):
    """The result of scoring a/x.tiff once (publish_report is tested with it under several identities)."""
    from her2fast import score

    return score(slides["a"], progress=False)


def copy_slide(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return dest


def publish(result, path: Path, out: Path, **kw):
    return publish_report(result, slide_identity(path), out, path.stem, pictures=False, geojson=True, **kw)


def assert_describes(outputs: dict, hashes: dict, sha256: str) -> None:
    """Every file is as written (its sha256) and the result JSON names this slide's content."""
    for kind, f in outputs.items():
        assert file_sha256(f) == hashes[kind], kind
    assert report_owner(Path(outputs["json"])) == sha256


# ------------------------------------------------------------------------------------------ names
def test_names_are_claimed_by_content_and_stable(scored, slides, tmp_path):
    out = tmp_path / "out"
    a, b = slides["a"], slides["b"]
    sha_a, sha_b = slide_identity(a).sha256, slide_identity(b).sha256
    files_a, hashes_a = publish(scored, a, out)
    files_b, hashes_b = publish(scored, b, out)
    assert Path(files_a["json"]).name == "x.her2fast.json"
    assert Path(files_b["json"]).name == f"x-{sha_b[:8]}.her2fast.json"
    assert_describes(files_a, hashes_a, sha_a)
    assert_describes(files_b, hashes_b, sha_b)
    # the same slides again, in the other order: the same names
    assert publish(scored, b, out)[0] == files_b
    assert publish(scored, a, out)[0] == files_a
    # a third slide, whose name an unrelated (non-her2fast) file holds: it takes the next name
    c = copy_slide(b, tmp_path / "c" / "x.tiff")
    c.write_bytes(c.read_bytes() + b"\0")  # other content
    (out / f"x-{slide_identity(c).sha256[:8]}.her2fast.json").write_text("not a report")
    files_c, _ = publish(scored, c, out)
    assert Path(files_c["json"]).name == f"x-{slide_identity(c).sha256[:16]}.her2fast.json"
    assert (out / f"x-{slide_identity(c).sha256[:8]}.her2fast.json").read_text() == "not a report"


def test_concurrent_publishers_never_share_a_name(scored, slides, tmp_path):
    """Eight threads publish four different slides of one file name at once, twice each."""
    out = tmp_path / "out"
    paths = [copy_slide(slides["a" if i % 2 else "b"], tmp_path / f"d{i}" / "x.tiff") for i in range(4)]
    for i, p in enumerate(paths):
        p.write_bytes(p.read_bytes() + bytes([i]))  # four different contents
    identities = [slide_identity(p) for p in paths]
    start = threading.Barrier(8)
    got: dict[int, list] = {i: [] for i in range(4)}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            start.wait()
            got[i % 4].append(publish_report(scored, identities[i % 4], out, "x", pictures=False, geojson=False))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    names = {}
    for i, runs in got.items():
        assert len({r[0]["json"] for r in runs}) == 1  # one name per slide
        names[i] = runs[0][0]["json"]
        assert report_owner(Path(names[i])) == identities[i].sha256
    assert len(set(names.values())) == 4
    assert not list(out.glob(".her2fast-*"))  # no temporary file left


@pytest.mark.slow
def test_two_batches_into_one_folder_keep_rows_and_files_together(slides, tmp_path):
    """`her2fast batch` twice at once into one --out, slides of the same file name: each row's files are its slide's."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "her2fast", "batch", "--out", str(out), "--workers", "1", "--no-pictures"]
    procs = [subprocess.Popen([*cmd, str(slides[k])], stdout=subprocess.PIPE, stderr=subprocess.PIPE) for k in "ab"]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()
    with ResultsStore(out) as store:
        rows = list(store.rows())
    assert len(rows) == 2 and {r["slide_path"] for r in rows} == {str(slides["a"]), str(slides["b"])}
    assert len({r["outputs"]["json"] for r in rows}) == 2
    for r in rows:
        assert_describes(r["outputs"], r["output_sha256"], r["slide_sha256"])
        result = json.loads(Path(r["outputs"]["json"]).read_text())
        assert result["path"] == r["slide_path"] and result["score"] == r["score"]


@pytest.mark.slow
def test_score_cli_stems_that_collide_get_their_own_reports(slides, tmp_path):
    """`score c1/x.tiff c2/x.tiff x-2.tiff`: three reports, each naming its own slide."""
    c1 = copy_slide(slides["a"], tmp_path / "c1" / "x.tiff")
    c2 = copy_slide(slides["b"], tmp_path / "c2" / "x.tiff")
    x2 = copy_slide(slides["a"], tmp_path / "x-2.tiff")
    x2.write_bytes(x2.read_bytes() + b"\0")
    out = tmp_path / "oc"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "her2fast",
            "score",
            str(c1),
            str(c2),
            str(x2),
            "--out",
            str(out),
            "-q",
            "--no-pictures",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode in (0, 3), proc.stderr  # 3: a small phantom may be too small to score
    reports = [line.rsplit("-> ", 1)[1] for line in proc.stdout.splitlines()]
    assert len(set(reports)) == 3
    for slide, report in zip((c1, c2, x2), reports):
        assert report_owner(Path(report)) == slide_identity(slide).sha256
        assert json.loads(Path(report).read_text())["path"] == str(slide)


# ------------------------------------------------------------------------------- links and inputs
def test_planted_links_are_replaced_never_written_through(scored, slides, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / "x.cells.npz").symlink_to(victim)
    (out / "x.geojson").symlink_to(tmp_path / "created-through-link.json")  # dangling
    files, hashes = publish(scored, slides["a"], out)
    assert victim.read_text() == "precious" and not (tmp_path / "created-through-link.json").exists()
    assert not (out / "x.cells.npz").is_symlink() and Path(files["cells"]) == out / "x.cells.npz"
    assert_describes(files, hashes, slide_identity(slides["a"]).sha256)
    # a link at the result JSON: the name belongs to no slide, the report goes elsewhere
    out2 = tmp_path / "out2"
    out2.mkdir()
    (out2 / "x.her2fast.json").symlink_to(victim)
    files2, _ = publish(scored, slides["a"], out2)
    assert victim.read_text() == "precious" and Path(files2["json"]).name != "x.her2fast.json"
    # atomic_write itself
    link = tmp_path / "link.txt"
    link.symlink_to(victim)
    atomic_write_text(link, "new")
    assert victim.read_text() == "precious" and link.read_text() == "new" and not link.is_symlink()


def test_outputs_never_replace_an_input(scored, slides, tmp_path):
    """`score a.png a.overlay.png --out <their folder>`: the second input is never overwritten."""
    from her2fast.service.report import write_report

    folder = tmp_path / "same"
    slide = copy_slide(slides["a"], folder / "x.tiff")
    other_input = copy_slide(slides["b"], folder / "x.cells.npz")  # an input where x's cell table would go
    before = other_input.read_bytes()
    protect = input_keys([slide, other_input])
    files, _ = publish(scored, slide, folder, protect=protect)
    assert other_input.read_bytes() == before
    assert Path(files["cells"]) != other_input and Path(files["json"]).name.startswith("x-")
    with pytest.raises(OutputError, match="input"):
        write_report(scored, folder, name="x", pictures=False, protect=protect)
    assert other_input.read_bytes() == before
    hard = folder / "x-hard.geojson"
    os.link(scored.path, hard)  # a hard link of the result's own slide
    with pytest.raises(OutputError):
        write_report(scored, folder, name="x-hard", pictures=False)
    assert file_sha256(hard) == file_sha256(scored.path)


def test_evaluate_refuses_to_overwrite_its_reference_csv(slides, tmp_path):
    from her2fast import InvalidInputError
    from her2fast.validation.evaluate import run_evaluation

    folder = tmp_path / "eval"
    copy_slide(slides["a"], folder / "x.tiff")
    csv = folder / "slides.csv"
    csv.write_text("slide,score\nx.tiff,1+\n")
    with pytest.raises(InvalidInputError, match=r"slides\.csv.*another --out"):
        run_evaluation(csv, folder, progress=False)
    assert csv.read_text() == "slide,score\nx.tiff,1+\n"
    assert not (folder / "results.db").exists()  # refused before anything was scored


# --------------------------------------------------------------------------------- changed slides
@pytest.mark.parametrize("how", ["mv", "rewrite"])
def test_a_slide_changed_while_scored_publishes_nothing(scored, slides, tmp_path, how, monkeypatch):
    """The watch-folder case: the file is replaced (mv) or rewritten in place (cat >) during scoring."""
    import her2fast.api

    path = copy_slide(slides["a"], tmp_path / "in" / "x.tiff")
    identity = slide_identity(path)
    out = tmp_path / "out"

    def score_then_replace(p, **kw):
        time.sleep(0.02)  # past the file system's timestamp granularity
        if how == "mv":
            tmp = copy_slide(slides["b"], tmp_path / "in" / ".x.part")
            os.replace(tmp, path)
        else:
            with open(path, "r+b") as fh:  # same size, same inode
                fh.seek(1000)
                fh.write(b"\xff" * 16)
        return scored

    monkeypatch.setattr(her2fast.api, "score", score_then_replace)
    record, kind = score_one(
        str(path),
        identity,
        out,
        "x",
        {},
        mpp=None,
        settings=None,
        providers="auto",
        progress=False,
        pictures=False,
        geojson=False,
    )
    assert kind == "changed" and record.status == "failed" and "SlideChangedError" in record.error
    assert not out.exists() or not [p for p in out.iterdir() if not p.name.startswith(".")]
    # publish_report refuses on its own as well
    with pytest.raises(SlideChangedError):
        publish_report(scored, identity, out, "x", pictures=False, geojson=False)


def test_store_row_records_output_hashes(slides, tmp_path):
    from her2fast.service.batch import score_to_store

    out = tmp_path / "out"
    with ResultsStore(out) as store:
        row = score_to_store(slides["b"], out, store=store, pictures=False)
    assert row["status"] == "ok" and set(row["output_sha256"]) == set(row["outputs"])
    assert_describes(row["outputs"], row["output_sha256"], row["slide_sha256"])


def test_watch_scores_a_slide_replaced_while_scored_again(scored, slides, tmp_path, monkeypatch):
    """`watch`: the row and files of a slide replaced mid-scoring describe the new slide, never a mix."""
    import her2fast.api
    from her2fast.service.watch import watch

    src = tmp_path / "scans"
    path = copy_slide(slides["a"], src / "x.tiff")
    calls: list[str] = []

    def score_replacing_once(p, **kw):
        calls.append(p)
        if len(calls) == 1:
            time.sleep(0.02)
            os.replace(copy_slide(slides["b"], src / ".x.part"), path)  # the scanner rewrites it meanwhile
        return scored

    monkeypatch.setattr(her2fast.api, "score", score_replacing_once)
    summary = watch(src, tmp_path / "out", settle=0, poll=0.05, once=True, pictures=False, geojson=False)
    assert len(calls) == 2 and summary.scored == 1 and summary.quarantined == 0
    with ResultsStore(tmp_path / "out") as store:
        rows = list(store.rows())
    assert len(rows) == 1 and rows[0]["status"] == "ok"
    assert rows[0]["slide_sha256"] == slide_identity(slides["b"]).sha256
    assert_describes(rows[0]["outputs"], rows[0]["output_sha256"], rows[0]["slide_sha256"])


def test_stale_partial_files_are_cleaned(tmp_path):
    """A process killed inside atomic_write leaves a hidden part file; the next batch removes it once stale."""
    from her2fast._files import TEMP_PREFIX
    from her2fast.service.slide_jobs import clean_stale_temp

    old, fresh = tmp_path / f"{TEMP_PREFIX}a-results.csv", tmp_path / f"{TEMP_PREFIX}b-results.csv"
    old.write_text("partial")
    fresh.write_text("being written")
    os.utime(old, (time.time() - 7200,) * 2)
    clean_stale_temp(tmp_path)
    assert not old.exists() and fresh.exists()


def test_a_slide_growing_while_hashed_has_no_identity(tmp_path, monkeypatch):
    """A scanner still writing the file while it is hashed: no identity (batch: 'failed'; watch: look again)."""
    import her2fast.io.store.identity as store_module
    from her2fast.service.slide_jobs import identify

    path = tmp_path / "growing.svs"
    path.write_bytes(b"\0" * 10_000)
    real = store_module.snapshot
    calls = []

    def snapshot_then_append(files):
        out = real(files)
        calls.append(out)
        if len(calls) == 1:
            time.sleep(0.02)
            with open(path, "ab") as fh:  # the scanner writes more while the hash is computed
                fh.write(b"\1" * 1000)
        return out

    monkeypatch.setattr(store_module, "snapshot", snapshot_then_append)
    with pytest.raises(SlideChangedError, match="changed while it was read"):
        slide_identity(path)
    calls.clear()
    identity, error = identify(str(path))
    assert identity.sha256 == "" and "changed while it was read" in error
