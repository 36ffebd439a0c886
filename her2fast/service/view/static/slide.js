// her2fast view: the slide page. OpenSeadragon shows the slide's Deep Zoom tiles and one tiled image per
// overlay (PNG tiles on the same grid); a click asks the server for the nearest tumour cell. Everything the
// server sends is put into the page as text (textContent), never as HTML.
"use strict";
(function () {
  const el = document.getElementById("viewer");
  if (!el) return;
  const base = el.dataset.overlayBase;
  const items = {};
  const viewer = OpenSeadragon({
    id: "viewer",
    prefixUrl: el.dataset.images,
    tileSources: el.dataset.dzi,
    showNavigator: true,
    maxZoomPixelRatio: 2,
    gestureSettingsMouse: { clickToZoom: false },
  });
  window.her2fastViewer = viewer;

  function checked(layer) {
    const box = document.querySelector('input.layer[value="' + layer + '"]');
    return box !== null && box.checked;
  }

  function updateLoaded() {
    let all = viewer.world.getItemCount() > 0;
    for (let i = 0; i < viewer.world.getItemCount(); i++) {
      const item = viewer.world.getItemAt(i);
      if (item.getOpacity() > 0 && !item.getFullyLoaded()) all = false;
    }
    document.body.dataset.loaded = all ? "1" : "0";
  }

  viewer.addHandler("open", function () {
    const slide = viewer.world.getItemAt(0);
    slide.addHandler("fully-loaded-change", updateLoaded);
    document.querySelectorAll("input.layer").forEach(function (box) {
      const layer = box.value;
      viewer.addTiledImage({
        tileSource: base + layer + ".dzi",
        opacity: box.checked ? 1 : 0,
        preload: false,
        success: function (ev) {
          items[layer] = ev.item;
          ev.item.addHandler("fully-loaded-change", updateLoaded);
          ev.item.setOpacity(checked(layer) ? 1 : 0);
          updateLoaded();
        },
      });
      box.addEventListener("change", function () {
        if (items[layer]) items[layer].setOpacity(box.checked ? 1 : 0);
        updateLoaded();
      });
    });
  });

  const names = {
    cell_id: "cell id", x: "x (level-0 px)", y: "y (level-0 px)", intensity: "intensity class",
    completeness: "membrane completeness", membrane_dab_od: "membrane DAB OD", closed: "closed membrane",
    membrane_thickness_um: "membrane thickness (µm)", area_um2: "area (µm²)",
  };

  function showCell(cell) {
    const panel = document.getElementById("cell");
    const none = document.getElementById("cell-none");
    if (!cell) {
      panel.hidden = true;
      none.hidden = false;
      return;
    }
    none.hidden = true;
    document.getElementById("cell-id").textContent = String(cell.cell_id);
    document.getElementById("cell-class").textContent = cell["class"];
    document.getElementById("cell-swatch").style.background = /^#[0-9a-f]{6}$/.test(cell.colour) ? cell.colour : "";
    const dl = document.getElementById("cell-measurements");
    dl.replaceChildren();
    Object.keys(names).forEach(function (k) {
      const dt = document.createElement("dt");
      dt.textContent = names[k];
      const dd = document.createElement("dd");
      dd.textContent = String(cell[k]);
      dl.append(dt, dd);
    });
    panel.hidden = false;
  }

  viewer.addHandler("canvas-click", function (ev) {
    if (!ev.quick) return;
    const slide = viewer.world.getItemAt(0);
    if (!slide) return;
    const p = slide.viewerElementToImageCoordinates(ev.position);
    const url = el.dataset.cellUrl + "?x=" + encodeURIComponent(p.x.toFixed(1)) + "&y=" + encodeURIComponent(p.y.toFixed(1));
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (d) { showCell(d.cell); })
      .catch(function () { showCell(null); });
  });

  document.querySelectorAll("time[data-unix]").forEach(function (t) {
    const s = Number(t.dataset.unix);
    if (isFinite(s)) t.textContent = new Date(s * 1000).toLocaleString();
  });
})();
