"""Lab calibration: fitting thresholds on cell tables, cross-validated figures, profiles and their refusal.

The fitting tests run on small synthetic cell tables whose membrane OD is that of a lab's stain (a factor on
every cell's OD); the end-to-end tests use a results store filled with such tables (nothing is scored) and
one small phantom scored through the command line with a profile.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from her2fast import __version__
from her2fast.errors import Her2FastError, InvalidInputError, ProfileError
from her2fast.scoring import (
    DEFAULT_RULES,
    CalibrationProfile,
    CellTable,
    ClassFractions,
    ScoringRules,
    classify_cells,
    intensity_class_from_od,
    measurement_settings,
    rescore_cells,
    score_cells,
    slide_category,
)
from her2fast.validation.calibrate import (
    CellSet,
    agreement,
    agreement_figures,
    cross_validate,
    fit_rules,
    reference_warnings,
)

#: true per-cell class mix (negative, faint incomplete, weak-moderate complete, intense complete) per category
MIX = {"0": (0.97, 0.03, 0, 0), "1+": (0.5, 0.45, 0.05, 0), "2+": (0.3, 0.4, 0.25, 0.05), "3+": (0.1, 0.1, 0.3, 0.5)}
#: membrane OD of each true class on the reference stain (the defaults' bands 0.05 / 0.15 / 0.80 fit it)
OD = np.array([0.0, 0.09, 0.35, 1.3])
CATS = ("0", "1+", "2+", "3+")


def table(category: str, od_scale: float, rng: np.random.Generator, n: int = 400) -> CellTable:
    """A measured-looking cell table of a slide of ``category`` on a stain whose OD is ``od_scale`` x the reference."""
    cls = rng.choice(4, size=n, p=MIX[category])
    od = OD[cls] * np.exp(rng.normal(0.0, 0.2, n))
    od[cls == 0] = np.abs(rng.normal(0.0, 0.01, int((cls == 0).sum())))
    comp = np.where(cls >= 2, rng.uniform(0.92, 1.0, n), np.where(cls == 1, rng.uniform(0.2, 0.7, n), 0.0))
    od = (od * od_scale).astype(np.float32)
    return CellTable(
        cell_id=np.arange(1, n + 1),
        x=rng.uniform(0, 1000, n),
        y=rng.uniform(0, 1000, n),
        is_tumour=rng.random(n) < 0.9,
        intensity=intensity_class_from_od(od, DEFAULT_RULES),
        completeness=comp.astype(np.float32),
        membrane_dab_od=od,
    )


def lab(od_scale: float, n_per_class: int, seed: int) -> tuple[list[CellTable], list[str]]:
    rng = np.random.default_rng(seed)
    refs = [c for _ in range(n_per_class) for c in CATS]
    return [table(c, od_scale, rng) for c in refs], refs


def accuracy(tables, refs, rules) -> float:
    pred = CellSet.from_tables(tables).categories(rules)
    return float(np.mean([("0" if p == "0+" else p) == r for p, r in zip(pred, refs)]))


# ------------------------------------------------------------------------------------ re-scoring
def test_rescore_cells_recomputes_the_intensity_from_the_od():
    t, _ = lab(1.0, 1, 0)
    r = ScoringRules(strong_od=0.3)
    direct = score_cells(replace(t[3], intensity=intensity_class_from_od(t[3].membrane_dab_od, r)), r)
    again = rescore_cells(t[3], r)
    assert again.category == direct.category
    np.testing.assert_array_equal(again.fractions.counts, direct.fractions.counts)
    # the stored intensity column (default bands) is not what decides: a lower strong band makes more 3+ cells
    assert again.fractions.intense_complete > score_cells(t[3], r).fractions.intense_complete


def test_cellset_categories_equal_rescoring_each_table():
    rng = np.random.default_rng(3)
    tables, _ = lab(0.7, 3, 1)
    cs = CellSet.from_tables(tables)
    for _ in range(20):
        faint = float(rng.uniform(0.01, 0.1))
        weak = faint + float(rng.uniform(0.01, 0.4))
        strong = weak + float(rng.uniform(0.01, 1.5))
        r = ScoringRules(faint_od=faint, weak_od=weak, strong_od=strong, complete_fraction=float(rng.uniform(0.5, 1)))
        assert cs.categories(r) == [rescore_cells(t, r).category for t in tables]
    sub = cs.subset([5, 2])
    assert sub.categories(DEFAULT_RULES) == [rescore_cells(tables[i], DEFAULT_RULES).category for i in (5, 2)]


def test_cellset_categories_equal_classify_cells_on_band_edges_and_unstained_cells():
    """Cells exactly on an OD band or on complete_fraction, unstained perimeters and one rule set after another
    (the cached intensity classes and completeness states) count as classify_cells counts them."""
    rng = np.random.default_rng(11)
    n_slides, per = 40, 30
    rules = [
        ScoringRules(faint_od=0.05, weak_od=0.15, strong_od=0.8, complete_fraction=0.9),
        ScoringRules(faint_od=0.05, weak_od=0.15, strong_od=0.8, complete_fraction=0.7),
        ScoringRules(faint_od=0.05, weak_od=0.3, strong_od=0.8, complete_fraction=0.7),
        ScoringRules(faint_od=0.05, weak_od=0.15, strong_od=0.8, complete_fraction=0.9),
    ]
    edges = np.array([0.0, 0.05, 0.15, 0.3, 0.8, 1.2])
    slide = np.repeat(np.arange(n_slides), per)
    level = np.linspace(0.02, 1.5, n_slides)[slide]  # slides from unstained to intense
    on_edge = rng.random(n_slides * per) < 0.3
    od = np.where(on_edge, rng.choice(edges, n_slides * per) * (level > 0.5), rng.uniform(0, 1, n_slides * per) * level)
    comp = rng.choice(np.array([0.0, 0.0, 0.3, 0.7, 0.9, 1.0]), n_slides * per)
    cs = CellSet(od=od, completeness=comp, slide=slide, n_cells=np.full(n_slides, per))
    for r in rules:
        cls = classify_cells(intensity_class_from_od(od, r), comp, r)
        want = [
            slide_category(ClassFractions(n_tumour_cells=per, per_class=c / per, counts=c), r)
            for c in np.bincount(slide * 5 + cls, minlength=n_slides * 5).reshape(n_slides, 5)
        ]
        assert cs.categories(r) == want
    assert len(set(cs.categories(rules[0]))) >= 3  # the cases reach several categories


def test_cellset_refuses_a_table_without_tumour_cells():
    t, _ = lab(1.0, 1, 0)
    empty = t[0].select(np.zeros(len(t[0]), bool))
    with pytest.raises(InvalidInputError, match="no tumour cells"):
        CellSet.from_tables([t[1], empty])


# ------------------------------------------------------------------------------------ fitting
def test_a_weak_stain_is_fitted_and_the_fit_holds_on_other_slides():
    tables, refs = lab(0.45, 5, 10)  # 20 slides: the intense membranes read below the strong band
    assert accuracy(tables, refs, DEFAULT_RULES) <= 0.85
    fit = fit_rules(tables, refs)
    assert fit.parameters["strong_od"] < 0.8 * DEFAULT_RULES.strong_od
    assert fit.agreement > fit.agreement_defaults
    held, held_refs = lab(0.45, 10, 11)  # 40 other slides of the same lab
    assert accuracy(held, held_refs, DEFAULT_RULES) <= 0.85
    assert accuracy(held, held_refs, fit.rules) >= 0.95


def test_a_strong_stain_raises_the_bands():
    tables, refs = lab(2.5, 5, 12)
    fit = fit_rules(tables, refs)
    assert fit.parameters["strong_od"] > DEFAULT_RULES.strong_od
    held, held_refs = lab(2.5, 10, 13)
    assert accuracy(held, held_refs, fit.rules) >= 0.95 > accuracy(held, held_refs, DEFAULT_RULES)


def test_a_lab_where_the_defaults_are_right_keeps_them():
    tables, refs = lab(1.0, 5, 14)
    assert accuracy(tables, refs, DEFAULT_RULES) == 1.0
    fit = fit_rules(tables, refs)
    held, held_refs = lab(1.0, 10, 15)
    cs = CellSet.from_tables(held)
    assert cs.categories(fit.rules) == cs.categories(DEFAULT_RULES)
    # regularised toward the defaults, and inside the window that agrees: not dragged anywhere
    for name, value in fit.parameters.items():
        assert value == pytest.approx(getattr(DEFAULT_RULES, name), rel=0.25), name


def test_regularisation_holds_the_defaults_against_a_few_slides():
    tables, refs = lab(0.45, 5, 16)
    held = fit_rules(tables, refs, strength=1e6)
    assert held.parameters == pytest.approx({f: getattr(DEFAULT_RULES, f) for f in held.parameters})
    # two slides move the bands less than twenty
    few = fit_rules(tables[6:8], refs[6:8])
    many = fit_rules(tables, refs)
    assert abs(np.log(few.parameters["strong_od"] / 0.8)) <= abs(np.log(many.parameters["strong_od"] / 0.8)) + 1e-9


def test_fit_is_generic_over_the_fields_and_keeps_the_other_rules():
    tables, refs = lab(0.45, 5, 17)
    base = ScoringRules(min_tumour_cells=50, near_cutoff_z=1.5)
    fit = fit_rules(tables, refs, fields=("strong_od",), base=base)
    assert set(fit.parameters) == {"strong_od"}
    assert (fit.rules.faint_od, fit.rules.weak_od, fit.rules.min_tumour_cells) == (0.05, 0.15, 50)
    with pytest.raises(InvalidInputError, match="positive_fraction"):
        fit_rules(tables, refs, fields=("positive_fraction",))
    with pytest.raises(InvalidInputError, match="reference"):
        fit_rules(tables, refs[:-1])


def test_agreement_is_quadratic_kappa_plus_a_tenth_of_accuracy():
    from her2fast.validation.statistics import cohen_kappa

    pred, ref = ["0", "0+", "2+", "3+", "1+", "2+"], ["0", "1+", "2+", "3+", "1+", "3+"]
    four = ["0", "0", "2+", "3+", "1+", "2+"]
    expected = cohen_kappa(four, ref, weights="quadratic") + 0.1 * 4 / 6
    assert agreement(pred, ref) == pytest.approx(expected)


# ------------------------------------------------------------------------------------ honest figures
def test_cross_validation_scores_each_slide_with_a_fit_that_never_saw_it():
    tables, refs = lab(0.45, 2, 18)
    refs = list(refs)
    refs[3] = "0"  # a 3+ slide the reference calls 0: fitting it in-sample would pull the bands up
    cv = cross_validate(tables, refs, folds=100)  # one slide per fold
    assert cv.fold == list(range(len(refs)))
    i = 3
    others = [j for j in range(len(refs)) if j != i]
    fit = fit_rules([tables[j] for j in others], [refs[j] for j in others])
    assert cv.calibrated[i] == rescore_cells(tables[i], fit.rules).category
    assert cv.default == CellSet.from_tables(tables).categories(DEFAULT_RULES)
    assert len(cv.fold_parameters) == len(refs)


def test_stratified_folds_hold_every_class():
    tables, refs = lab(1.0, 5, 19)
    cv = cross_validate(tables, refs, folds=5, seed=3)
    for f in range(5):
        assert sorted(r for r, k in zip(refs, cv.fold) if k == f) == sorted(CATS)


def test_agreement_figures_known_answers():
    ref = ["0", "1+", "2+", "3+"] * 5
    wrong = ["0", "1+", "2+", "2+"] * 5  # every 3+ read 2+
    f = agreement_figures(wrong, ref, ref, n_boot=200)
    assert f["calibrated"]["accuracy"] == 1.0 and f["calibrated"]["accuracy_ci"] == [1.0, 1.0]
    assert f["default"]["accuracy"] == 0.75
    assert f["default"]["low_agreement"] == 0.75  # 3+ read 2+ crosses the low / 3+ line
    assert f["difference"]["accuracy"]["value"] == 0.25
    lo, hi = f["difference"]["accuracy"]["ci"]
    assert 0 < lo <= 0.25 <= hi
    assert f["default"]["confusion"][2] == [0, 0, 5, 5]  # rows predicted, columns reference


def test_warnings_for_small_and_one_sided_sets():
    balanced = ["0"] * 10 + ["1+"] * 10 + ["2+"] * 10 + ["3+"] * 20
    assert reference_warnings(balanced) == []
    w = reference_warnings(["0", "1+", "2+", "2+", "1+", "0"])
    assert any("CAP asks for at least 20 positive and 20 negative" in x for x in w)
    assert any("no slide is 3+" in x for x in w)
    # a 2+ with ISH amplification is a positive
    assert "0 positive" in reference_warnings(["2+"] * 3 + ["0"] * 3)[0]
    assert "3 positive" in reference_warnings(["2+"] * 3 + ["0"] * 3, ish=[True] * 3 + [None] * 3)[0]


# ------------------------------------------------------------------------------------ profiles
def profile(**kw) -> CalibrationProfile:
    from her2fast import ScoreSettings

    args = dict(
        name="lab A <script>",
        parameters={"strong_od": 0.5, "complete_fraction": 0.85},
        models={"epithelium_svm": "a" * 64, "membrane_unet": "b" * 64},
        her2fast_version=__version__,
        measurement=measurement_settings(ScoreSettings().to_dict()),
        created="2024-01-01T00:00:00+00:00",
    )
    args.update(kw)
    return CalibrationProfile(**args)


def test_profile_round_trip_and_hash(tmp_path):
    from her2fast.io.profile import load_profile, save_profile

    p = profile(figures={"held_out": {"accuracy": 0.95}}, warnings=["small"])
    again = CalibrationProfile.from_json(p.to_json())
    assert again == p and again.sha256 == p.sha256
    path = save_profile(p, tmp_path / "prof")
    loaded = load_profile(tmp_path / "prof")  # the folder
    assert loaded == p
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == load_profile(path).sha256
    assert loaded.rules().strong_od == 0.5 and loaded.rules().weak_od == DEFAULT_RULES.weak_od
    assert loaded.rules(ScoringRules(min_tumour_cells=7)).min_tumour_cells == 7
    # one byte more is another profile
    path.write_text(path.read_text() + " ")
    assert load_profile(path).sha256 != p.sha256


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not JSON"),
        ('{"name": "x"}', "not a her2fast calibration profile"),
        (None, "format 99"),
        (None, "cannot be calibrated"),
        (None, "valid scoring rules"),
    ],
)
def test_broken_profiles_are_profile_errors(tmp_path, text, match):
    from her2fast.io.profile import load_profile

    d = profile().to_dict()
    if match == "format 99":
        d["format_version"] = 99
    elif match == "cannot be calibrated":
        d["parameters"] = {"positive_fraction": 0.2}
    elif match == "valid scoring rules":
        d["parameters"] = {"faint_od": 0.3, "weak_od": 0.2}
    path = tmp_path / "profile.json"
    path.write_text(text if text is not None else json.dumps(d))
    with pytest.raises(ProfileError, match=match) as info:
        load_profile(path)
    assert str(path) in str(info.value)
    with pytest.raises(ProfileError, match="not found"):
        load_profile(tmp_path / "nothing")


def test_a_profile_for_other_models_is_refused():
    p = profile()
    models = dict(p.models)
    p.check_compatible({**models, "settings": "x"}, __version__, p.measurement)  # the settings hash is not a model
    other = {**models, "membrane_unet": "c" * 64}
    with pytest.raises(ProfileError, match="other models.*membrane_unet") as info:
        p.check_compatible(other, __version__, p.measurement)
    assert isinstance(info.value, Her2FastError) and "her2fast calibrate" in str(info.value)
    with pytest.raises(ProfileError, match="membrane_unet"):  # the classical method: no U-Net
        p.check_compatible({"epithelium_svm": "a" * 64}, __version__, p.measurement)
    with pytest.raises(ProfileError, match="her2fast 0.0.0"):
        replace(p, her2fast_version="0.0.0").check_compatible(models, __version__, p.measurement)
    changed = json.loads(json.dumps(p.measurement))
    changed["cells"]["cytoplasm_weight"] = 0.0
    with pytest.raises(ProfileError, match="cells.cytoplasm_weight"):
        p.check_compatible(models, __version__, changed)


def test_score_refuses_a_mismatched_profile_before_reading_the_slide(tmp_path):
    import her2fast
    from her2fast.api import apply_profile, run_models

    with pytest.raises(ProfileError, match="other models"):
        her2fast.score(tmp_path / "missing.svs", profile=profile())
    good = profile(models=run_models())
    settings, prof = apply_profile(good)
    assert settings.rules.strong_od == 0.5 and settings.cells.rules == settings.rules
    assert settings.rules.complete_fraction == 0.85 and prof is good


# ------------------------------------------------------------------------------------ end to end
def _filled_store(tmp_path: Path, tables, refs):
    """Slide files (never opened) whose ok runs, with these cell tables, are in a results store already."""
    from her2fast import ScoreSettings
    from her2fast.io.store import ResultsStore, RunRecord, slide_identity
    from her2fast.service.batch import model_versions

    versions = model_versions(ScoreSettings())
    scores = tmp_path / "scores"
    scores.mkdir()
    lines = ["slide,score"]
    with ResultsStore(scores) as store:
        for i, (t, ref) in enumerate(zip(tables, refs)):
            slide = tmp_path / f"slide {i}.tif"
            slide.write_bytes(b"not read: the run is in the store " + bytes([i]))
            cells = scores / f"slide {i}.cells.npz"
            t.save_npz(cells)
            res = score_cells(t)
            store.insert(
                RunRecord(
                    slide=slide_identity(slide),
                    status="ok",
                    package_version=__version__,
                    model_versions=versions,
                    category=res.category,
                    score="0" if res.category == "0+" else res.category,
                    outputs={"cells": str(cells)},
                )
            )
            lines.append(f"{slide.name},{ref}")
    csv = tmp_path / "reference.csv"
    csv.write_text("\n".join(lines) + "\n")
    return csv, scores


def test_calibrate_from_the_store_writes_profile_and_reports(tmp_path):
    import her2fast
    from her2fast.io.profile import load_profile

    tables, refs = lab(0.45, 4, 20)  # 16 slides
    csv, scores = _filled_store(tmp_path, tables, refs)
    report = her2fast.calibrate(
        csv, tmp_path / "prof", name="lab <b>&</b>", scores_dir=scores, progress=False, n_boot=200, folds=4
    )
    files = report.files
    prof = load_profile(tmp_path / "prof")
    assert prof.sha256 == report.profile.sha256 == hashlib.sha256(files["profile"].read_bytes()).hexdigest()
    assert prof.parameters["strong_od"] < 0.8
    assert prof.reference["sha256"] == hashlib.sha256(csv.read_bytes()).hexdigest()
    assert prof.reference["bytes"] == csv.stat().st_size and prof.reference["scored"] == 16
    assert prof.her2fast_version == __version__ and set(prof.models) >= {"epithelium_svm"}
    d = json.loads(files["json"].read_text())
    assert d["profile"]["sha256"] == prof.sha256
    f = d["cross_validation"]["figures"]
    assert f["calibrated"]["accuracy"] > f["default"]["accuracy"]
    assert any("CAP asks" in w for w in d["warnings"])
    assert [s["status"] for s in d["slides"]] == ["used"] * 16
    page = files["html"].read_text()
    assert "<b>&</b>" not in page and "lab &lt;b&gt;&amp;&lt;/b&gt;" in page


def test_calibrate_refuses_a_one_class_reference(tmp_path):
    import her2fast

    tables, _ = lab(1.0, 2, 21)
    csv, scores = _filled_store(tmp_path, tables, ["3+"] * len(tables))
    with pytest.raises(InvalidInputError, match="two classes"):
        her2fast.calibrate(csv, tmp_path / "prof", scores_dir=scores, progress=False)


@pytest.fixture(scope="module")
def small_phantom(tmp_path_factory):
    from her2fast.synth import make_slide

    folder = tmp_path_factory.mktemp("phantom")
    gt = make_slide(folder / "p3.tiff", category="3+", variant="typical", width=768, height=768, seed=960)
    return gt.path


@pytest.mark.slow
def test_cli_score_with_a_profile(tmp_path, small_phantom, capsys):
    from her2fast.api import run_models
    from her2fast.cli import main
    from her2fast.io.profile import load_profile, save_profile

    # a strong band no membrane reaches: no cell can be intense, so a 3+ phantom cannot stay 3+
    prof_dir = tmp_path / "prof"
    save_profile(profile(models=run_models(), parameters={"strong_od": 9.0}), prof_dir)
    p = load_profile(prof_dir)
    out = tmp_path / "out"
    code = main(["score", str(small_phantom), "--out", str(out), "--profile", str(prof_dir), "--json", "-q"])
    assert code in (0, 3)
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["provenance"]["profile"]["name"] == p.name
    assert line["provenance"]["profile"]["sha256"] == p.sha256
    assert line["provenance"]["settings"]["rules"]["strong_od"] == 9.0
    cells = CellTable.load_npz(next(out.glob("*.cells.npz")))
    np.testing.assert_array_equal(cells.intensity, intensity_class_from_od(cells.membrane_dab_od, p.rules()))
    assert line["percentages"]["intense_complete"] == 0.0
    assert line["category"] != "3+" and rescore_cells(cells, DEFAULT_RULES).category == "3+"
    assert line["category"] == rescore_cells(cells, p.rules()).category


def test_cli_refuses_a_profile_for_other_models_before_scoring(tmp_path, capsys):
    from her2fast.cli import main
    from her2fast.io.profile import save_profile

    slide = tmp_path / "slide.tiff"
    slide.write_bytes(b"never read")
    save_profile(profile(), tmp_path / "bad")
    for command in (["score", str(slide)], ["batch", str(slide)], ["evaluate", str(tmp_path / "ref.csv")]):
        (tmp_path / "ref.csv").write_text("slide,score\nslide.tiff,3+\n")
        args = [*command, "--out", str(tmp_path / "out"), "--profile", str(tmp_path / "bad"), "-q"]
        assert main(args) == 1, command
        assert "other models" in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.db").exists()
    assert main(["score", str(slide), "--out", str(tmp_path / "out"), "--profile", str(tmp_path / "none")]) == 1
    assert "calibration profile not found" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_with_a_profile_equals_rescoring_the_default_run(small_phantom):
    import her2fast
    from her2fast.api import run_models

    p = profile(models=run_models(), parameters={"strong_od": 1.1, "weak_od": 0.2, "complete_fraction": 0.8})
    default = her2fast.score(small_phantom, progress=False)
    with_profile = her2fast.score(small_phantom, progress=False, profile=p)
    again = rescore_cells(default.cells, p.rules())
    assert with_profile.category == again.category
    assert with_profile.percentages == again.fractions.as_percentages()
    assert with_profile.provenance["profile"]["sha256"] == p.sha256


def test_results_of_a_profile_are_kept_apart_in_the_store():
    from her2fast import ScoreSettings
    from her2fast.api import apply_profile, run_models
    from her2fast.service.batch import model_versions

    p = profile(models=run_models())
    settings, prof = apply_profile(p)
    with_profile = model_versions(settings, prof)
    plain = model_versions(ScoreSettings())
    assert with_profile["profile"] == p.sha256[:16] and "profile" not in plain
    assert with_profile["settings"] != plain["settings"]
    # the same thresholds under another name are another profile: its results name it
    other = profile(models=run_models(), name="lab B")
    assert model_versions(*apply_profile(other))["profile"] != with_profile["profile"]


def test_cli_calibrate_from_the_store(tmp_path, capsys):
    from her2fast.cli import main

    tables, refs = lab(0.45, 3, 22)
    csv, scores = _filled_store(tmp_path, tables, refs)
    out = tmp_path / "prof"
    code = main(["calibrate", str(csv), "--out", str(out), "--scores", str(scores), "-q", "--n-boot", "100"])
    assert code == 0
    text = capsys.readouterr().out
    assert "strong_od" in text and "Held-out agreement" in text and "warning: small reference set" in text
    assert (out / "profile.json").is_file() and (out / "calibration.html").is_file()
    assert (
        main(["calibrate", str(csv), "--out", str(out), "--scores", str(scores), "--fields", "positive_fraction"]) == 1
    )
    assert "positive_fraction" in capsys.readouterr().err


@pytest.mark.slow
def test_batch_with_a_profile_names_it_and_keeps_its_results_apart(tmp_path, small_phantom):
    from her2fast.api import run_models
    from her2fast.service.batch import run_batch

    p = profile(models=run_models(), parameters={"strong_od": 9.0})
    first = run_batch([small_phantom], tmp_path / "out", profile=p, progress=False, pictures=False, geojson=False)
    row = first.rows[0]
    assert row["status"] == "ok" and row["model_versions"]["profile"] == p.sha256[:16]
    d = json.loads(Path(row["outputs"]["json"]).read_text())
    assert d["provenance"]["profile"]["sha256"] == p.sha256 and d["category"] != "3+"
    again = run_batch([small_phantom], tmp_path / "out", profile=p, progress=False, pictures=False, geojson=False)
    assert again.n_skipped == 1
    plain = run_batch([small_phantom], tmp_path / "out", progress=False, pictures=False, geojson=False)
    assert plain.n_scored == 1 and plain.rows[0]["category"] == "3+"
