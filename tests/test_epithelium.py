"""Epithelium/stroma superpixel classifier (her2fast.stages.epithelium) and `her2fast train-epithelium`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from her2fast.errors import InvalidInputError, ModelError
from her2fast.stages.epithelium import (
    EpitheliumMap,
    EpitheliumModel,
    EpitheliumSettings,
    TrainingSet,
    annotated_training_set,
    classify_image,
    classify_slide,
    default_model,
    fit_epithelium_model,
    rasterize_annotations,
    read_qupath_geojson,
    select_tiles,
    superpixel_features,
    white_balanced,
)

MODEL_DIR = Path(__file__).resolve().parents[1] / "her2fast" / "models" / "epithelium_svm"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    """A small 2+ phantom slide (1536 px at 0.5 um/px) with its ground truth."""
    from her2fast.synth import make_slide

    path = tmp_path_factory.mktemp("epi") / "p.tiff"
    gt = make_slide(path, category="2+", width=1536, height=1536, mpp=0.5, seed=31, workers=1)
    return path, gt


@pytest.fixture(scope="module")
def small_phantom(phantom_slide) -> Path:
    """A 768 px 2+ phantom slide (sidecars beside it) for the augmentation tests, which compare superpixel sets
    row for row: their figures do not need a larger slide."""
    return phantom_slide(category="2+", width=768, height=768, seed=31).path


def random_training_set(n=300, seed=0, settings=None) -> TrainingSet:
    st = settings or EpitheliumSettings()
    d = len(st.feature_names())
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.4
    x = rng.normal(0, 1, (n, d)) * rng.uniform(0.1, 3, d) + y[:, None] * rng.normal(0, 1.0, d)
    return TrainingSet(x, y, y.astype(float), np.zeros(n, np.int32), ["random"], st)


# ------------------------------------------------------------------------------------ SVM storage
def test_model_round_trip_equals_scikit_learn(tmp_path):
    from sklearn.svm import SVC

    ts = random_training_set()
    model = fit_epithelium_model(ts, gamma=0.01, C=2.0, max_samples=1000)
    # the reference: scikit-learn fitted on the same standardised features
    z = (ts.features - ts.features.mean(0)) / ts.features.std(0)
    ref = SVC(C=2.0, kernel="rbf", gamma=0.01).fit(z, ts.labels.astype(int))
    test = np.random.default_rng(1).normal(0, 2, (200, ts.features.shape[1]))
    zt = (test - ts.features.mean(0)) / ts.features.std(0)
    saved = model.save(tmp_path / "m")
    loaded = EpitheliumModel.load(tmp_path / "m")
    assert loaded.sha256 == saved.sha256 and len(loaded.sha256) == 64
    for m in (model, loaded):
        np.testing.assert_allclose(m.decision_function(test), ref.decision_function(zt), rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(m.predict(test), ref.predict(zt).astype(bool))
    assert loaded.classes == ("stroma", "epithelium") and loaded.settings == model.settings
    # plain arrays, no pickle
    with np.load(tmp_path / "m" / "model.npz", allow_pickle=False) as zf:
        assert set(zf.files) == {"support_vectors", "dual_coef", "intercept", "gamma", "feature_mean", "feature_scale"}
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["format_version"] == 1 and cfg["sha256"] == saved.sha256


def test_model_load_errors(tmp_path):
    with pytest.raises(ModelError, match="config.json is missing"):
        EpitheliumModel.load(tmp_path)
    model = fit_epithelium_model(random_training_set(), max_samples=200).save(tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    (tmp_path / "m" / "model.npz").write_bytes(b"corrupt")
    with pytest.raises(ModelError, match="sha256"):
        EpitheliumModel.load(tmp_path / "m")
    cfg["format_version"] = 99
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="format_version"):
        EpitheliumModel.load(tmp_path / "m")
    with pytest.raises(ModelError, match="support_vectors"):
        EpitheliumModel(np.zeros((3, 5)), np.zeros(3), 0.0, 0.1, np.zeros(5), np.ones(5))
    assert model.sha256


def test_shipped_model():
    model = default_model()
    assert model.sha256 == json.loads((MODEL_DIR / "config.json").read_text())["sha256"]
    assert sum(f.stat().st_size for f in MODEL_DIR.iterdir()) < 5 * 2**20
    assert (MODEL_DIR / "MODEL_CARD.md").exists()
    assert model.settings.mpp == 2.0
    assert model.metadata["training_seeds"]


def test_training_needs_both_classes():
    ts = random_training_set()
    ts.labels[:] = True
    ts.truth_fraction[:] = 1.0
    with pytest.raises(InvalidInputError, match="both"):
        fit_epithelium_model(ts)


# ------------------------------------------------------------------------------------ features
def test_superpixel_features_shape_and_stain_columns():
    from her2fast.synth import make_tile

    t = make_tile(256, category="3+", mpp=2.0, seed=3)
    sf = superpixel_features(t.rgb)
    st = EpitheliumSettings()
    assert sf.features.shape == (len(sf), len(st.feature_names()))
    assert sf.labels.min() == 0 and sf.labels.max() == len(sf) - 1
    assert sf.n_pixels.sum() == 256 * 256
    names = st.feature_names()
    np.testing.assert_allclose(sf.features[:, :16].sum(1), 1.0)  # hematoxylin OD histogram
    np.testing.assert_allclose(sf.features[:, 16:32].sum(1), 1.0)  # DAB OD histogram
    assert names[0] == "hematoxylin_od_00" and names[16] == "dab_od_00" and names[32] == "lbp_0"
    rgb = superpixel_features(t.rgb, settings=EpitheliumSettings(colour_histograms="rgb"))
    assert rgb.features.shape[1] == 238 and np.array_equal(rgb.labels, sf.labels)
    np.testing.assert_allclose(rgb.features[:, :32].sum(1), 1.0)  # red histogram
    np.testing.assert_array_equal(rgb.features[:, 224:], sf.features[:, 32:])  # LBP + stain columns agree
    assert names[-4:] == ["mean_hematoxylin_od", "mean_dab_od", "nuclear_fraction", "std_hematoxylin_od"]
    assert np.all(sf.features[:, names.index("nuclear_fraction")] <= 1)
    mask = np.zeros((256, 256), bool)
    mask[:, :100] = True
    sm = superpixel_features(t.rgb, mask=mask)
    assert (sm.labels[:, 100:] == -1).all() and (sm.labels[:, :100] >= 0).all()
    empty = superpixel_features(t.rgb, mask=np.zeros((256, 256), bool))
    assert len(empty) == 0 and empty.features.shape == (0, len(names))


def test_stain_histograms_equal_numpy_histograms():
    """Each superpixel's H and DAB histograms = np.histogram of its deconvolved pixels (last bin open)."""
    from her2fast.stages.epithelium import STAIN_BINS, STAIN_OD_MAX
    from her2fast.stages.stain import deconvolve
    from her2fast.synth import make_tile

    for seed, cat in ((4, "3+"), (5, "0")):
        t = make_tile(192, category=cat, mpp=2.0, seed=seed)
        rng = np.random.default_rng(seed)
        img = np.clip(t.rgb.astype(int) + rng.integers(-3, 4, t.rgb.shape), 0, 255).astype(np.uint8)
        sf = superpixel_features(img)
        conc = deconvolve(img)
        edges = np.linspace(0.0, STAIN_OD_MAX, STAIN_BINS + 1)
        for k in rng.choice(len(sf), 12, replace=False):
            sel = sf.labels == k
            for j, od in enumerate((conc.hematoxylin[sel], conc.dab[sel])):
                ref = np.histogram(np.clip(od, 0.0, STAIN_OD_MAX - 1e-6), bins=edges)[0] / sel.sum()
                np.testing.assert_allclose(sf.features[k, 16 * j : 16 * (j + 1)], ref, atol=1e-12)


def test_white_balanced_maps_the_glass_to_the_reference_and_keeps_order():
    from her2fast.stages.epithelium import WHITE_REFERENCE

    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    bg = np.array([247.0, 252.0, 241.0])
    out = white_balanced(img, bg)
    assert out.dtype == np.uint8 and out.shape == img.shape
    ref = np.clip(np.rint(img.astype(np.float64) * (WHITE_REFERENCE / bg)), 0, 255)
    np.testing.assert_array_equal(out, ref)
    glass = np.broadcast_to(np.rint(bg).astype(np.uint8), (2, 2, 3))
    assert np.abs(white_balanced(np.ascontiguousarray(glass), bg).astype(int) - 250).max() <= 1
    for bad in ([250, 250], [250, 0, 250], [np.nan, 250, 250]):
        with pytest.raises(InvalidInputError, match="background"):
            white_balanced(img, np.array(bad, float))


def test_features_do_not_follow_the_scanner_white_balance():
    """The same tissue under two white balances: the colour histograms agree with white balancing and
    differ without it (the failure it fixes: a phantom with glass (248, 252, 247) read as epithelium)."""
    from her2fast.stages.stain import StainVectors
    from her2fast.synth import make_tile

    t = make_tile(256, category="2+", mpp=2.0, seed=8)
    gain = np.array([0.985, 1.0, 0.975])  # glass 250 -> (246, 250, 244)
    shifted = np.clip(np.rint(t.rgb * gain), 0, 255).astype(np.uint8)
    base = StainVectors.standard()
    s0 = StainVectors(base.hematoxylin, base.dab, background=np.full(3, 250.0))
    s1 = StainVectors(base.hematoxylin, base.dab, background=250.0 * gain)
    mask = np.ones((256, 256), bool)
    for wb, bound in ((True, 0.06), (False, None)):
        # one superpixel over the whole image, so both images have the same (single) segment
        st = EpitheliumSettings(white_balance=wb, superpixel_um=512.0, colour_histograms="rgb")
        a = superpixel_features(t.rgb, mask=mask, settings=st, stains=s0)
        b = superpixel_features(shifted, mask=mask, settings=st, stains=s1)
        assert len(a) == len(b) == 1
        # colour histograms (the first 224 columns): L1 distance per histogram (R, G, B, H, S, V, grey)
        d = np.abs(a.features[:, :224] - b.features[:, :224]).sum() / 7
        if wb:
            assert d < bound, d
            no_wb_needed = d
        else:
            assert d > 3 * no_wb_needed, (d, no_wb_needed)
    # the default features (stain histograms from ODs against the glass, white-balanced LBP): all close
    st = EpitheliumSettings(superpixel_um=512.0)
    a = superpixel_features(t.rgb, mask=mask, settings=st, stains=s0).features
    b = superpixel_features(shifted, mask=mask, settings=st, stains=s1).features
    assert np.abs(a[:, :32] - b[:, :32]).sum() / 2 < 0.06 and np.abs(a[:, 32:] - b[:, 32:]).max() < 0.02


def test_models_saved_before_white_balance_load_as_rgb_without_it(tmp_path):
    """A config written before these settings existed (238 RGB features, no white balance) loads as such."""
    rgb = EpitheliumSettings(colour_histograms="rgb")
    ts = random_training_set(settings=rgb)
    model = fit_epithelium_model(ts, max_samples=200).save(tmp_path / "m")
    assert model.settings.white_balance is True and model.gamma == 0.001  # default_gamma of "rgb"
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    del cfg["settings"]["white_balance"], cfg["settings"]["colour_histograms"]
    cfg_path.write_text(json.dumps(cfg))
    old = EpitheliumModel.load(tmp_path / "m")
    assert old.settings.white_balance is False and old.settings.colour_histograms == "rgb"
    assert old.n_features == len(old.settings.feature_names()) == 238
    assert fit_epithelium_model(random_training_set(), max_samples=200).gamma == 0.02  # "stain": 46 features
    with pytest.raises(InvalidInputError, match="white_balance"):
        EpitheliumSettings(white_balance="yes")
    with pytest.raises(InvalidInputError, match="colour_histograms"):
        EpitheliumSettings(colour_histograms="hsv")
    assert type(EpitheliumSettings(white_balance=np.bool_(True)).white_balance) is bool  # JSON-safe


# ------------------------------------------------------------------------------------ classification
def test_epithelium_iou_on_a_phantom_tile():
    from her2fast.synth import make_tile

    # 1024 px at 0.5 um/px, box-downsampled 4x to 2 um/px as a slide pyramid does
    t = make_tile(1024, category="2+", mpp=0.5, seed=77)
    rgb = t.rgb.astype(np.float32).reshape(256, 4, 256, 4, 3).mean(axis=(1, 3))
    rgb = np.rint(rgb).astype(np.uint8)
    truth = t.epithelium_mask.reshape(256, 4, 256, 4).mean(axis=(1, 3)) >= 0.5
    out = classify_image(rgb)
    assert out.epithelium_mask.shape == truth.shape and out.decision.shape == (out.labels.max() + 1,)
    # 0.87 measured; held-out slides: benchmarks/epithelium.py
    assert iou(out.epithelium_mask, truth) >= 0.8


def test_classify_slide_and_select_tiles(phantom):
    from her2fast.io.slide import open_slide
    from her2fast.stages.stain import slide_stain_vectors
    from her2fast.stages.tissue import detect_tissue, tile_grid

    path, gt = phantom
    with open_slide(path) as slide:
        tissue = detect_tissue(slide)
        grid = tile_grid(slide, tissue, tile_size=256)
        stains = slide_stain_vectors(slide, grid, background=tissue.background, n_tiles=4)
        ep = classify_slide(slide, tissue, stains=stains, workers=2)
    assert isinstance(ep, EpitheliumMap)
    assert ep.epithelium_mask.shape == ep.tissue_mask.shape == (384, 384) and ep.mpp == 2.0
    assert ep.level0_per_pixel == (4.0, 4.0) and ep.n_superpixels > 100
    assert not (ep.epithelium_mask & ~ep.tissue_mask).any()
    f = 4  # truth at 8 um/px
    pred = ep.epithelium_mask.reshape(96, f, 96, f).mean(axis=(1, 3)) >= 0.5
    assert iou(pred, gt.epithelium_mask >= 128) >= 0.75
    sel = select_tiles(grid, ep, min_epithelium=0.2)
    assert 0 < len(sel) <= len(grid)
    assert np.all(sel.epithelium_fraction >= 0.2 - 1e-6)
    assert sel.all_epithelium_fraction.shape == (len(grid),)
    assert len(sel.grid) == len(sel) and sel.grid.tile_size == grid.tile_size
    with pytest.raises(InvalidInputError, match="min_epithelium"):
        select_tiles(grid, ep, min_epithelium=2)
    with pytest.raises(InvalidInputError, match="TissueMask"):
        classify_slide(slide, "tissue")


# ------------------------------------------------------------------------------------ QuPath GeoJSON
def square(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


def feature(cls, geometry):
    props = {"objectType": "annotation"}
    if cls is not None:
        props["classification"] = {"name": cls, "color": [200, 0, 0]}
    return {"type": "Feature", "geometry": geometry, "properties": props}


def test_read_and_rasterize_qupath_geojson(tmp_path):
    fc = {
        "type": "FeatureCollection",
        "features": [
            feature("Stroma", {"type": "Polygon", "coordinates": [square(0, 0, 400, 400)]}),
            feature(
                "Tumor", {"type": "Polygon", "coordinates": [square(100, 100, 300, 300), square(180, 180, 220, 220)]}
            ),
            feature("Epithelium", {"type": "MultiPolygon", "coordinates": [[square(500, 0, 600, 100)]]}),
            feature("Necrosis", {"type": "Polygon", "coordinates": [square(700, 0, 800, 100)]}),
            feature(None, {"type": "Polygon", "coordinates": [square(700, 200, 800, 300)]}),
            feature("Tumor", {"type": "Point", "coordinates": [5, 5]}),
        ],
    }
    p = tmp_path / "a.geojson"
    p.write_text(json.dumps(fc))
    ann = read_qupath_geojson(p)
    assert [a.label for a in ann] == ["stroma", "epithelium", "epithelium"]
    assert ann[1].parts == (2,) and ann[1].class_name == "Tumor"
    r = rasterize_annotations(ann, (50, 100), (10.0, 10.0))
    assert r.dtype == np.int8
    assert r[5, 5] == 0 and r[25, 12] == 1 and r[20, 20] == -1  # stroma, tumour, hole
    assert r[5, 55] == 1 and r[5, 75] == -1 and r[45, 45] == -1
    # a list of features (QuPath "export as FeatureCollection" off) works too
    p.write_text(json.dumps(fc["features"][:2]))
    assert len(read_qupath_geojson(p)) == 2


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"type": "Polygon"}), "not GeoJSON features"),
        (json.dumps([{"type": "Feature"}]), "feature 0 has no geometry"),
        (
            json.dumps([feature("Necrosis", {"type": "Polygon", "coordinates": [square(0, 0, 1, 1)]})]),
            r"no epithelium or stroma polygons \(found: Necrosis \(1\)\)",
        ),
        (
            json.dumps([feature("Tumor", {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]})]),
            "feature 0 \\(Tumor\\) has an invalid Polygon",
        ),
        (
            json.dumps([feature("Stroma", {"type": "Polygon", "coordinates": [[[0, 0], ["a", 1], [2, 2]]]})]),
            "invalid Polygon",
        ),
    ],
)
def test_geojson_errors_name_the_file_and_the_problem(tmp_path, content, match):
    p = tmp_path / "bad.geojson"
    p.write_text(content)
    with pytest.raises(InvalidInputError, match=match) as exc:
        read_qupath_geojson(p)
    assert "bad.geojson" in str(exc.value)


def test_geojson_missing_file(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        read_qupath_geojson(tmp_path / "nope.geojson")


def truth_geojson(gt, path: Path) -> Path:
    """QuPath-style annotations drawn from a phantom's truth: one square per clean 8 um truth pixel block."""
    ep = gt.epithelium_mask
    s = gt.epithelium_mask_mpp / gt.mpp
    feats = []
    for i in range(0, ep.shape[0] - 4, 6):
        for j in range(0, ep.shape[1] - 4, 6):
            block = ep[i : i + 4, j : j + 4]
            if (block == 255).all() or (block == 0).all() and j % 12 == 0:
                cls = "Tumor" if block[0, 0] == 255 else "Stroma"
                feats.append(
                    feature(cls, {"type": "Polygon", "coordinates": [square(j * s, i * s, (j + 4) * s, (i + 4) * s)]})
                )
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def test_annotated_training_set_agrees_with_truth(phantom, tmp_path):
    from her2fast.synth.epithelium_truth import phantom_training_set

    path, gt = phantom
    geo = truth_geojson(gt, tmp_path / "truth.geojson")
    ts = annotated_training_set(path, geo)
    assert len(ts) > 50 and 0 < ts.labels.mean() < 1
    # labelled superpixels are (nearly) all correct against the phantom's own truth
    model = default_model()
    acc = float((model.predict(ts.features) == ts.labels).mean())
    assert acc >= 0.9
    ph = phantom_training_set(path)
    assert ph.features.shape[1] == ts.features.shape[1]


# ------------------------------------------------------------------------------------ CLI
def test_train_epithelium_cli_smoke(phantom, tmp_path, capsys):
    from her2fast.cli import main

    path, gt = phantom
    geo = truth_geojson(gt, tmp_path / "truth.geojson")
    out = tmp_path / "model"
    rc = main(
        [
            "train-epithelium",
            "--out",
            str(out),
            "--phantom",
            str(path),
            "--annotated",
            str(path),
            str(geo),
            "--max-samples",
            "800",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "support vectors" in text
    model = EpitheliumModel.load(out)
    assert model.metadata["training_seeds"] == [31]
    assert model.metadata["training_command"] is not None
    assert model.metadata["background_scales"] == [0.98, 1.0, 1.02] and "x 3 glass levels" in text


def test_glass_level_augmentation(small_phantom):
    """background_scales: the slide's superpixels once per glass level; the 1.0 copy is the plain set, the
    others differ only through the optical densities (and the white balance) measured against the glass."""
    from her2fast.synth.epithelium_truth import phantom_training_set

    path = small_phantom
    plain = phantom_training_set(path)
    aug = phantom_training_set(path, background_scales=(0.98, 1.0, 1.02))
    n = len(plain)
    assert len(aug) >= 2 * n
    # the middle block is the plain set, row for row (blocks: 0.98, 1.0, 1.02 in order)
    lo = len(phantom_training_set(path, background_scales=(0.98,)))
    np.testing.assert_array_equal(aug.features[lo : lo + n], plain.features)
    dark = aug.features[:lo]
    names = EpitheliumSettings().feature_names()
    col = names.index("mean_hematoxylin_od")
    # optical densities against a darker glass (x 0.98) are lower
    assert np.median(dark[:, col]) < np.median(plain.features[:, col])
    for bad in ((), (0.5,), (1.0, float("nan"))):
        with pytest.raises(InvalidInputError, match="background_scales"):
            phantom_training_set(path, background_scales=bad)


def test_tone_curve_augmentation(small_phantom):
    """tone_gammas: the slide's superpixels once per tone curve 255 (I/255)^g; g = 1 is the plain set, g < 1
    lightens every optical density (lower mean hematoxylin OD), g > 1 darkens it."""
    from her2fast.synth.epithelium_truth import phantom_training_set

    path = small_phantom
    plain = phantom_training_set(path)
    aug = phantom_training_set(path, tone_gammas=(0.8, 1.0, 1.25))
    light = phantom_training_set(path, tone_gammas=(0.8,))
    dark = phantom_training_set(path, tone_gammas=(1.25,))
    assert len(aug) == len(light) + len(plain) + len(dark)
    np.testing.assert_array_equal(aug.features[len(light) : len(light) + len(plain)], plain.features)
    col = EpitheliumSettings().feature_names().index("mean_hematoxylin_od")
    m = [np.median(t.features[:, col]) for t in (light, plain, dark)]
    assert m[0] < 0.9 * m[1] and m[2] > 1.1 * m[1]
    both = phantom_training_set(path, background_scales=(0.98, 1.0), tone_gammas=(0.8, 1.0))
    assert len(both) == len(phantom_training_set(path, background_scales=(0.98,))) + len(plain) + len(light) + len(
        phantom_training_set(path, background_scales=(0.98,), tone_gammas=(0.8,))
    )
    for bad in ((), (0.3,), (1.0, float("nan"))):
        with pytest.raises(InvalidInputError, match="tone_gammas"):
            phantom_training_set(path, tone_gammas=bad)


def test_train_epithelium_cli_errors(tmp_path, capsys):
    from her2fast.cli import main

    assert main(["train-epithelium", "--out", str(tmp_path / "m")]) == 1
    assert "nothing to train on" in capsys.readouterr().err
    bad = tmp_path / "bad.geojson"
    bad.write_text("[]")
    assert main(["train-epithelium", "--out", str(tmp_path / "m"), "--annotated", "x.svs", str(bad)]) == 1
    assert "bad.geojson" in capsys.readouterr().err


# ------------------------------------------------------------------------------ decision smoothing
def test_decision_smoothing_follows_the_neighbours_and_stays_in_the_superpixels():
    from dataclasses import replace

    from her2fast.stages.epithelium import epithelium_from_decisions

    rng = np.random.default_rng(5)
    labels = np.full((60, 60), -1, np.int32)
    labels[5:55, 5:55] = (np.arange(50)[:, None] // 10) * 5 + np.arange(50)[None, :] // 10  # 25 squares
    decision = rng.uniform(0.5, 2.0, 25)
    decision[12] = -0.2  # one weakly negative square in the middle of epithelium
    plain = EpitheliumSettings()
    hard = epithelium_from_decisions(labels, decision, plain)
    np.testing.assert_array_equal(hard, np.concatenate([[False], decision > 0])[labels + 1])
    assert not hard[labels == 12].any()
    soft = epithelium_from_decisions(labels, decision, replace(plain, decision_smoothing_um=8.0))
    assert soft[labels == 12].mean() > 0.5  # taken back by its neighbours
    assert not soft[labels < 0].any()  # never outside the superpixels
    # a strongly negative square keeps its own decision inside, away from the border
    decision[12] = -50.0
    soft = epithelium_from_decisions(labels, decision, replace(plain, decision_smoothing_um=8.0))
    assert not soft[28:32, 28:32].any()
    with pytest.raises(InvalidInputError, match="decision values"):
        epithelium_from_decisions(labels, decision[:10], plain)


def test_decision_smoothing_setting_is_checked_and_defaults_to_off_for_old_models(tmp_path):
    with pytest.raises(InvalidInputError, match="decision_smoothing_um"):
        EpitheliumSettings(decision_smoothing_um=-1.0)
    with pytest.raises(InvalidInputError, match="decision_smoothing_um"):
        EpitheliumSettings(decision_smoothing_um=float("nan"))
    model = fit_epithelium_model(random_training_set(), max_samples=200)
    folder = tmp_path / "m"
    model.save(folder)
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["settings"]["decision_smoothing_um"] == 0.0
    del cfg["settings"]["decision_smoothing_um"]  # a model saved before the setting existed
    (folder / "config.json").write_text(json.dumps(cfg))
    assert EpitheliumModel.load(folder).settings.decision_smoothing_um == 0.0
    assert default_model().settings.decision_smoothing_um > 0


def test_scanner_copies_keep_the_truth_and_change_the_pixels(phantom):
    from her2fast.synth import load_ground_truth
    from her2fast.synth.epithelium_truth import SCANNER_COPIES, scanner_copies
    from her2fast.synth.perturb import read_level0

    path, gt = phantom
    copies = scanner_copies(path)
    assert [c.name for c in copies] == [f"p.scan-{n}.tiff" for n in SCANNER_COPIES]
    original, _ = read_level0(path)
    for c in copies:
        truth = load_ground_truth(c)
        assert truth.category == gt.category and truth.seed == 31
        np.testing.assert_array_equal(truth.epithelium_mask, load_ground_truth(path).epithelium_mask)
        pixels, _ = read_level0(c)
        assert pixels.shape == original.shape
        assert np.abs(pixels.astype(int) - original).mean() > 0.5
    stamps = [c.stat().st_mtime_ns for c in copies]
    assert [c.stat().st_mtime_ns for c in scanner_copies(path)] == stamps  # reused, not rewritten
    with pytest.raises(InvalidInputError, match="ground truth"):
        scanner_copies(path.with_name("missing.tiff"))
