"""Fuzz the slide readers and the reference-CSV reader with mutated files (Hypothesis).

Targets
-------
- ``slides``: :func:`her2fast.io.slide.open_slide` on mutated bytes of small seed files -- phantom slides
  (pyramidal tiled TIFF, an Aperio-style SVS, PNG, plain TIFF) made here, and the small files of
  ``../shared/data/wsi`` when present -- then ``thumbnail``, a ``read`` at the slide's resolution and
  ``is_brightfield``.
- ``csv``: :func:`her2fast.validation.reference_csv.read_reference_csv` on mutated reference CSVs and on
  generated text in several encodings.

Every call must either succeed or raise a :class:`her2fast.errors.Her2FastError`: any other exception is a
failure, and so is a call that runs past ``--limit-s`` seconds (a hang) or kills the process (a crash).
The examples run in a child process under a watchdog (``faulthandler.dump_traceback_later``, which fires
even while native code holds the thread) and an address-space limit; the parent restarts the child after a
hang or crash and keeps the offending input under ``--crashes``.

Usage::

    python benchmarks/fuzz.py --minutes 10          # the long local run
    python benchmarks/fuzz.py --seconds 25          # what tests/test_fuzz.py runs

It prints one line of figures (examples tried per target, non-her2fast exceptions, hangs, crashes, the
slowest example) and exits 1 when any failure was found.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_WSI = ROOT.parent / "shared" / "data" / "wsi"
#: Shared files used as seeds when present (small ones: mutations of a big file mostly hit pixel data).
SHARED_SEEDS = ("boxes.png", "boxes.tiff", "small.svs", "broken.svs", "unopenable.tiff", "unreadable.svs")
INTERESTING = (0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF)


# ------------------------------------------------------------------------------------------ seeds
def make_seeds(folder: Path) -> dict[str, list[Path]]:
    """Write the seed files; returns target -> seed paths."""
    import numpy as np
    import tifffile
    from PIL import Image

    from her2fast.synth import make_slide

    folder.mkdir(parents=True, exist_ok=True)
    slides: list[Path] = []
    ph = make_slide(folder / "phantom.tiff", category="3+", width=256, height=256, seed=7, tile_size=128)
    slides.append(ph.path)
    with tifffile.TiffFile(ph.path) as tf:
        rgb = tf.pages[0].asarray()
    png = folder / "phantom.png"
    Image.fromarray(rgb).save(png)
    slides.append(png)
    plain = folder / "plain.tiff"
    tifffile.imwrite(plain, rgb[:128, :128], photometric="rgb", resolution=(20000, 20000), resolutionunit="CENTIMETER")
    slides.append(plain)
    svs = folder / "aperio.svs"
    desc = "Aperio Image Library v12.0.15\r\n256x256 [0,0 256x256] (128x128) JPEG/RGB Q=70|AppMag = 20|MPP = 0.5"
    with tifffile.TiffWriter(svs) as tw:
        tw.write(rgb, tile=(128, 128), photometric="rgb", compression="jpeg", description=desc)
        tw.write(rgb[::2, ::2].copy(), tile=(128, 128), photometric="rgb", compression="jpeg")
    slides.append(svs)
    small_png = folder / "tiny.png"
    Image.fromarray(np.full((40, 40, 3), 230, np.uint8)).save(small_png)
    slides.append(small_png)
    if SHARED_WSI.is_dir():
        for name in SHARED_SEEDS:
            if (SHARED_WSI / name).is_file():
                dest = folder / f"shared-{name}"
                shutil.copyfile(SHARED_WSI / name, dest)
                slides.append(dest)
    csvs: list[Path] = []
    for i, text in enumerate(
        (
            "slide,score\na.tiff,3+\nb.tiff,0\n",
            "Slide,Score,Percent_Complete,ISH\na.svs,2+,12.5,amplified\nsub/b.svs,1+,3%,not amplified\n",
            'score,slide\n"negative","x, y.tiff"\n"positive",/abs/z.ndpi\n',
            "\ufeffslide,score,ish\nc.tiff,0+,negative\n",
        )
    ):
        p = folder / f"reference{i}.csv"
        p.write_text(text, encoding="utf-8")
        csvs.append(p)
    return {"slides": slides, "csv": csvs}


def hot_offsets(data: bytes) -> list[int]:
    """Offsets of structure in a seed (TIFF IFD entries and their values, PNG chunk headers) for mutations."""
    hot = list(range(min(len(data), 64)))
    if data[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        try:
            import io

            import tifffile

            with tifffile.TiffFile(io.BytesIO(data)) as tf:
                for page in tf.pages:
                    for tag in page.tags:
                        hot += [tag.offset, tag.offset + 2, tag.offset + 4, tag.offset + 8, tag.valueoffset]
        except Exception:  # noqa: BLE001 - a broken seed: no hot offsets beyond the header
            pass
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        pos = 8
        while pos + 8 <= len(data):
            hot += [pos, pos + 4, pos + 8]
            pos += 12 + int.from_bytes(data[pos : pos + 4], "big")
    return sorted({h for h in hot if 0 <= h < len(data)})


# -------------------------------------------------------------------------------------- mutations
def strategies(seeds: dict[str, list[Path]]):
    """Hypothesis strategies: target -> strategy of (seed suffix, bytes)."""
    from hypothesis import strategies as st

    loaded = {t: [(p.suffix, p.read_bytes()) for p in ps] for t, ps in seeds.items()}
    hot = {id(d): hot_offsets(d) for ps in loaded.values() for _, d in ps}

    @st.composite
    def mutate(draw, choices):
        suffix, seed = draw(st.sampled_from(choices))
        data = bytearray(seed)
        offsets = hot[id(seed)]
        for _ in range(draw(st.sampled_from((1, 1, 1, 2, 2, 3, 6)))):
            if not data:
                break
            n = len(data)
            pos = draw(
                st.one_of(
                    st.sampled_from(offsets).map(lambda o, last=n - 1: min(o, last))
                    if offsets
                    else st.integers(0, n - 1),
                    st.integers(0, n - 1),
                )
            )
            kind = draw(
                st.sampled_from(("byte", "int16", "int32", "int32", "flip", "truncate", "insert", "delete", "copy"))
            )
            if kind == "byte":
                data[pos] = draw(st.integers(0, 255))
            elif kind in ("int16", "int32"):
                width = 2 if kind == "int16" else 4
                value = draw(st.one_of(st.sampled_from(INTERESTING), st.integers(0, 2 ** (8 * width) - 1)))
                order = draw(st.sampled_from(("little", "big")))
                data[pos : pos + width] = (value % 2 ** (8 * width)).to_bytes(width, order)
            elif kind == "flip":
                data[pos] ^= 1 << draw(st.integers(0, 7))
            elif kind == "truncate":
                del data[pos:]
            elif kind == "insert":
                data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
            elif kind == "delete":
                del data[pos : pos + draw(st.integers(1, 256))]
            else:  # copy a block from elsewhere in the file over this spot
                src = draw(st.integers(0, n - 1))
                size = draw(st.integers(1, 512))
                data[pos : pos + size] = data[src : src + size]
        return suffix, bytes(data)

    words = st.sampled_from(
        ("slide", "score", "percent_complete", "ish", "3+", "0+", "2+", "amplified", "12.5", "%", "nan", "inf")
    )
    cell = st.one_of(words, st.text(max_size=12))
    rows = st.lists(st.lists(cell, min_size=0, max_size=5), min_size=0, max_size=6)
    encoding = st.sampled_from(("utf-8", "utf-16", "latin-1", "utf-8-sig", "utf-32"))

    @st.composite
    def generated_csv(draw):
        sep = draw(st.sampled_from((",", ";", "\t", '"', ",,")))
        nl = draw(st.sampled_from(("\n", "\r\n", "\r", "\0")))
        text = nl.join(sep.join(r) for r in draw(rows))
        try:
            data = text.encode(draw(encoding))
        except UnicodeEncodeError:
            data = text.encode("utf-8", "surrogatepass")
        return ".csv", data

    return {
        "slides": mutate(loaded["slides"]),
        "csv": st.one_of(mutate(loaded["csv"]), generated_csv()),
    }


# ----------------------------------------------------------------------------------------- targets
def run_slide(path: Path) -> None:
    """Open a (mutated) slide and read from it as scoring does."""
    from her2fast.errors import MissingResolutionError
    from her2fast.io.slide import open_slide

    try:
        slide = open_slide(path)
    except MissingResolutionError:
        slide = open_slide(path, mpp=0.5)
    with slide:
        slide.thumbnail(max_size=128)
        w, h = slide.dimensions
        slide.read(w / 3, h / 3, 64, 64, slide.mpp_x)
        slide.read(-10, -10, 32, 32, slide.mpp_x * 4)
        _ = slide.is_brightfield


def run_csv(path: Path) -> None:
    """Read a (mutated) reference CSV, checking that its slide files exist."""
    from her2fast.errors import Her2FastError
    from her2fast.validation.reference_csv import read_reference_csv

    read_reference_csv(path, check_files=False)
    try:  # the same rows, now with their slide paths looked up on disk
        read_reference_csv(path, check_files=True)
    except Her2FastError:
        pass


TARGETS = {"slides": run_slide, "csv": run_csv}


# -------------------------------------------------------------------------------------------- child
def child(args: argparse.Namespace) -> int:
    """Run examples until the time is up; counts go to ``args.state`` (JSON) after every example."""
    import faulthandler
    import resource

    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    from her2fast.errors import Her2FastError

    logging.getLogger("tifffile").setLevel(logging.CRITICAL + 1)  # its warnings about broken files
    if args.memory_gb > 0:
        limit = int(args.memory_gb * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    work = Path(args.work)
    seeds = {t: [Path(f) for f in fs] for t, fs in json.loads((work / "seeds.json").read_text()).items()}
    strats = strategies(seeds)
    targets = [t for t in TARGETS if args.target in (t, "all")]
    state_path = Path(args.state)
    state = json.loads(state_path.read_text())
    current = work / "current"
    hang_log = open(work / "hang.txt", "w")  # noqa: SIM115 - the watchdog writes here until the process ends
    deadline = time.monotonic() + args.seconds
    crashes = Path(args.crashes)

    def save_state() -> None:
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, state_path)

    def example(target: str, suffix: str, data: bytes) -> None:
        path = work / f"input{suffix}"
        path.write_bytes(data)
        current.write_text(json.dumps({"target": target, "file": str(path)}))
        faulthandler.dump_traceback_later(args.limit_s, exit=True, file=hang_log)
        t0 = time.perf_counter()
        try:
            TARGETS[target](path)
            state["accepted"][target] = state["accepted"].get(target, 0) + 1
        except Her2FastError:
            pass
        except Exception as exc:  # noqa: BLE001 - the finding itself
            state["failures"] += 1
            where = traceback.extract_tb(exc.__traceback__)[-1]
            key = f"{target}: {type(exc).__name__} at {Path(where.filename).name}:{where.lineno} ({str(exc)[:80]})"
            key = next((k for k in state["kinds"] if k.split(" (")[0] == key.split(" (")[0]), key)
            state["kinds"][key] = state["kinds"].get(key, 0) + 1
            if state["kinds"][key] <= 3:
                crashes.mkdir(parents=True, exist_ok=True)
                name = f"{target}-{type(exc).__name__}-{state['failures']}{suffix}"
                (crashes / name).write_bytes(data)
                (crashes / f"{name}.txt").write_text(traceback.format_exc())
        finally:
            faulthandler.cancel_dump_traceback_later()
        dt = time.perf_counter() - t0
        state["examples"][target] = state["examples"].get(target, 0) + 1
        state["slowest_s"] = max(state["slowest_s"], dt)
        save_state()

    for target in targets:
        state["examples"].setdefault(target, 0)

    def make_run(target: str):
        @settings(
            max_examples=10,  # the targets take turns every 10 examples, so each gets its share of the time
            deadline=None,
            database=None,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate],
        )
        @given(st.data())
        def run(data) -> None:
            suffix, blob = data.draw(strats[target])
            if time.monotonic() < deadline:
                example(target, suffix, blob)

        return run

    runs = [make_run(t) for t in targets]
    rounds = 0
    while time.monotonic() < deadline:
        runs[rounds % len(runs)]()
        rounds += 1
    current.unlink(missing_ok=True)
    return 0


# ------------------------------------------------------------------------------------------- parent
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=None, help="total fuzzing time")
    p.add_argument("--seconds", type=float, default=None, help="total fuzzing time (default 60 s)")
    p.add_argument("--target", choices=("all", *TARGETS), default="all")
    p.add_argument("--limit-s", type=float, default=20.0, help="seconds one example may take (default %(default)s)")
    p.add_argument("--memory-gb", type=float, default=4.0, help="address-space limit of the child (0: none)")
    p.add_argument("--crashes", default=None, help="folder for failing inputs (default: a temporary folder)")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--work", default=None, help=argparse.SUPPRESS)
    p.add_argument("--state", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        try:
            return child(args)
        except Exception:  # noqa: BLE001 - a fault of the harness itself, not a finding
            traceback.print_exc()
            return 2
    total = args.minutes * 60 if args.minutes is not None else args.seconds if args.seconds is not None else 60.0
    work = Path(tempfile.mkdtemp(prefix="her2fast-fuzz-"))
    crashes = Path(args.crashes) if args.crashes else work / "crashes"
    state_path = work / "state.json"
    state = {
        "examples": {},
        "failures": 0,
        "hangs": 0,
        "crashes": 0,
        "kinds": {},
        "slowest_s": 0.0,
        "restarts": 0,
        "accepted": {},
    }
    state_path.write_text(json.dumps(state))
    t0 = time.monotonic()
    seeds = make_seeds(work / "seeds")
    (work / "seeds.json").write_text(json.dumps({t: [str(f) for f in fs] for t, fs in seeds.items()}))
    seed_s = time.monotonic() - t0
    try:
        while (left := total - (time.monotonic() - t0)) > 1.0:
            cmd = [
                sys.executable,
                __file__,
                "--child",
                f"--work={work}",
                f"--state={state_path}",
                f"--seconds={left}",
                f"--target={args.target}",
                f"--limit-s={args.limit_s}",
                f"--memory-gb={args.memory_gb}",
                f"--crashes={crashes}",
            ]
            rc = subprocess.run(cmd, cwd=work, timeout=left + args.limit_s + 120).returncode
            state = json.loads(state_path.read_text())
            current = work / "current"
            if rc == 0:
                break
            if rc == 2:
                raise SystemExit("fuzz: the harness failed (traceback above)")
            # the child died: a hang (the watchdog exits 1 after dumping the traceback) or a crash (a signal)
            hung = rc == 1 and "most recent call first" in (work / "hang.txt").read_text(errors="replace")
            state["hangs" if hung else "crashes"] += 1
            state["restarts"] += 1
            if current.exists():
                info = json.loads(current.read_text())
                crashes.mkdir(parents=True, exist_ok=True)
                src = Path(info["file"])
                what = "hang" if hung else f"crash-rc{rc}"
                if src.exists():
                    shutil.copyfile(src, crashes / f"{info['target']}-{what}-{state['restarts']}{src.suffix}")
                shutil.copyfile(work / "hang.txt", crashes / f"{info['target']}-{what}-{state['restarts']}.txt")
                state["examples"][info["target"]] = state["examples"].get(info["target"], 0) + 1
                current.unlink()
            state_path.write_text(json.dumps(state))
    finally:
        elapsed = time.monotonic() - t0
    examples, accepted = state["examples"], state["accepted"]
    figures = {
        "seconds": round(elapsed, 1),
        "seed_seconds": round(seed_s, 1),
        "examples": examples,
        "examples_total": sum(examples.values()),
        "read_without_error": state["accepted"],
        "non_her2fast_exceptions": state["failures"],
        "hangs": state["hangs"],
        "crashes": state["crashes"],
        "slowest_example_s": round(state["slowest_s"], 3),
        "limit_s": args.limit_s,
        "kinds": state["kinds"],
        "crash_folder": str(crashes) if crashes.exists() else None,
    }
    print(
        f"fuzz: {elapsed:.0f} s, {figures['examples_total']} examples "
        f"({', '.join(f'{k} {v} ({accepted.get(k, 0)} read without error)' for k, v in examples.items())}), "
        f"{state['failures']} non-her2fast exceptions, {state['hangs']} hangs (> {args.limit_s:g} s), "
        f"{state['crashes']} crashes, slowest example {state['slowest_s']:.2f} s",
        flush=True,
    )
    for key, n in sorted(state["kinds"].items(), key=lambda kv: -kv[1]):
        print(f"  {n} x {key}", flush=True)
    if figures["crash_folder"]:
        print(f"  failing inputs: {crashes}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    failed = state["failures"] + state["hangs"] + state["crashes"]
    if not failed and not args.crashes:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
