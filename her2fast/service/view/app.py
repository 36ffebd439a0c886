"""The Flask application of ``her2fast view``: worklist, slide pages, tiles, cell look-up and sign-off.

Routes (``<run>`` is a run's integer ``id`` in the results store; nothing else from a request names a file):

=============================================  ======  ===============================================
``/``                                          GET     worklist: the newest run of every slide
``/slide/<run>``                               GET     slide page: deep zoom, overlays, result, sign-off
``/slide/<run>/thumbnail.jpg``                 GET     small picture of the slide
``/slide/<run>/slide.dzi``                     GET     Deep Zoom descriptor of the slide
``/slide/<run>/slide_files/<l>/<c>_<r>.jpeg``  GET     a slide tile
``/slide/<run>/<layer>.dzi``                   GET     descriptor of an overlay (same grid, PNG)
``/slide/<run>/<layer>_files/<l>/<c>_<r>.png`` GET     an overlay tile (cells, epithelium, heatmap)
``/slide/<run>/cell?x=&y=``                    GET     JSON: the tumour cell nearest to a level-0 point
``/slide/<run>/review``                        POST    sign-off (CSRF token); stored as a review row
``/static/...``                                GET     the package's own CSS, JS and OpenSeadragon
=============================================  ======  ===============================================
"""

from __future__ import annotations

import hmac
import math
import secrets
import threading
from collections import OrderedDict
from pathlib import Path

from ...errors import Her2FastError, InvalidInputError
from ...io.store import MAX_REASON, MAX_REVIEWER, REVIEW_SCORES, ResultsStore
from .catalog import Catalog
from .overlays import LAYERS, render_overlay
from .tiles import TileSource, encode, open_tiles

__all__ = ["create_app"]

_HERE = Path(__file__).resolve().parent
#: the longest distance (micrometres) from a click to the cell it shows
CLICK_RADIUS_UM = 15.0
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class _Slides:
    """Open tile sources by run id (bounded; a slide that fails to open is remembered with its error)."""

    def __init__(self, catalog: Catalog, size: int = 16) -> None:
        self.catalog = catalog
        self.size = size
        self._lock = threading.Lock()
        self._open: OrderedDict[int, TileSource | Her2FastError] = OrderedDict()

    def get(self, run_id: int, row: dict) -> TileSource:
        with self._lock:
            hit = self._open.get(run_id)
            if hit is not None:
                self._open.move_to_end(run_id)
        if hit is None:
            result = self.catalog.result(row)  # the JSON only: a thumbnail does not load the cell table
            meta = result.get("provenance", {}).get("slide", {}) if result else {}
            mpp = meta.get("mpp_x") if meta.get("mpp_source") in ("user", "estimated") else None
            try:
                hit = open_tiles(row["slide_path"], mpp=mpp)
            except Her2FastError as exc:
                hit = exc
            except Exception as exc:  # noqa: BLE001 - any library failure on a bad file is that slide's error
                hit = InvalidInputError(f"cannot open {row['slide_path']}: {type(exc).__name__}: {exc}")
            with self._lock:
                hit = self._open.setdefault(run_id, hit)
                while len(self._open) > self.size:
                    self._open.popitem(last=False)  # dropped, not closed: another thread may still read it
        if isinstance(hit, Her2FastError):
            raise hit
        return hit


class _TileCache:
    """Encoded tiles by key, least recently used dropped first (bounded in bytes)."""

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple, bytes] = OrderedDict()
        self._bytes = 0

    def get(self, key: tuple) -> bytes | None:
        with self._lock:
            v = self._items.get(key)
            if v is not None:
                self._items.move_to_end(key)
            return v

    def put(self, key: tuple, value: bytes) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._bytes += len(value)
            while self._bytes > self.max_bytes and self._items:
                _, old = self._items.popitem(last=False)
                self._bytes -= len(old)


def _fmt(value, spec: str = ".1f", none: str = "–") -> str:
    if value is None:
        return none
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return format(v, spec) if math.isfinite(v) else none


def create_app(location: str | Path, *, tile_cache_bytes: int = 64 << 20, trusted_hosts=None):
    """The viewer's Flask application over the results store at ``location``.

    Parameters
    ----------
    location : path
        Output folder of ``her2fast batch`` / ``watch`` (holding ``results.db``) or the database file.
    tile_cache_bytes : int
        Memory for encoded tiles kept for repeated requests.
    trusted_hosts : list of str, optional
        Host names the ``Host`` header may carry (others get 400): :func:`~her2fast.service.view.serve` on
        the loopback passes ``127.0.0.1``, ``localhost`` and ``::1``, so that a web page elsewhere cannot
        reach the viewer through a DNS name of its own (DNS rebinding). None: any.

    Returns
    -------
    flask.Flask

    Raises
    ------
    ViewerNotInstalledError
        Flask is not installed (``pip install her2fast[view]``).
    StoreError
        No results store at ``location``.
    """
    from . import _require_flask

    _require_flask()
    from flask import Flask, Response, abort, jsonify, redirect, render_template, request, session, url_for

    catalog = Catalog(location)
    slides = _Slides(catalog)
    cache = _TileCache(tile_cache_bytes)
    app = Flask("her2fast.service.view", template_folder=str(_HERE / "templates"), static_folder=str(_HERE / "static"))
    app.config.update(
        SECRET_KEY=secrets.token_bytes(32),  # sessions (the CSRF token) last as long as the server
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        MAX_CONTENT_LENGTH=64 << 10,
        SEND_FILE_MAX_AGE_DEFAULT=3600,
        TRUSTED_HOSTS=list(trusted_hosts) if trusted_hosts is not None else None,
    )
    app.jinja_env.autoescape = True
    app.jinja_env.filters["fmt"] = _fmt
    app.extensions["her2fast_catalog"] = catalog

    def csrf_token() -> str:
        token = session.get("csrf")
        if not isinstance(token, str):
            token = secrets.token_urlsafe(32)
            session["csrf"] = token
        return token

    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.after_request
    def headers(resp):
        for k, v in _SECURITY_HEADERS.items():
            if k == "Cache-Control" and request.endpoint in ("static", "tile", "overlay_tile", "thumbnail"):
                continue
            resp.headers.setdefault(k, v)
        return resp

    def error_page(status: int, title: str, message: str):
        return render_template("error.html", title=title, message=message, status=status), status

    @app.errorhandler(404)
    def not_found(_exc):
        return error_page(404, "Not found", "There is no such page or slide in this results store.")

    @app.errorhandler(405)
    def not_allowed(_exc):
        return error_page(405, "Method not allowed", "This address does not take that kind of request.")

    @app.errorhandler(413)
    def too_large(_exc):
        return error_page(413, "Request too large", "The form sent was larger than a sign-off can be.")

    @app.errorhandler(500)
    def server_error(_exc):
        return error_page(500, "Server error", "The viewer failed on this request; other slides are not affected.")

    def the_run(run_id: int) -> dict:
        row = catalog.run(run_id)
        if row is None:
            abort(404)
        return row

    # --------------------------------------------------------------------------------- pages
    @app.get("/favicon.ico")
    def favicon():
        return Response(status=204)

    @app.get("/")
    def worklist():
        rows = catalog.worklist()
        return render_template("worklist.html", rows=rows, store=str(catalog.db_path))

    @app.get("/slide/<int:run_id>")
    def slide_page(run_id: int):
        row = the_run(run_id)
        data = catalog.data(run_id, row)
        problem = geometry = None
        try:
            geometry = slides.get(run_id, row).geometry
        except Her2FastError as exc:
            problem = str(exc)
        status = 200 if problem is None else 500
        result = data.result
        return (
            render_template(
                "slide.html",
                row=row,
                result=result,
                data=data,
                problem=problem,
                geometry=geometry,
                layers=LAYERS,
                scores=REVIEW_SCORES,
                max_reviewer=MAX_REVIEWER,
                max_reason=MAX_REASON,
                reviewer=session.get("reviewer", ""),
                click_radius=CLICK_RADIUS_UM,
            ),
            status,
        )

    # --------------------------------------------------------------------------------- tiles
    def tile_source(run_id: int) -> TileSource:
        row = the_run(run_id)
        try:
            return slides.get(run_id, row)
        except Her2FastError as exc:
            abort(Response(f"slide {run_id} cannot be opened: {exc}", status=500, mimetype="text/plain"))

    @app.get("/slide/<int:run_id>/slide.dzi")
    def dzi(run_id: int):
        return Response(tile_source(run_id).geometry.dzi("jpeg"), mimetype="application/xml")

    @app.get("/slide/<int:run_id>/slide_files/<int:level>/<int:col>_<int:row>.jpeg")
    def tile(run_id: int, level: int, col: int, row: int):
        key = ("slide", run_id, level, col, row)
        body = cache.get(key)
        if body is None:
            source = tile_source(run_id)
            try:
                body = encode(source.tile(level, col, row), "jpeg")
            except InvalidInputError:
                abort(404)
            except Her2FastError as exc:
                abort(Response(str(exc), status=500, mimetype="text/plain"))
            cache.put(key, body)
        return Response(body, mimetype="image/jpeg")

    @app.get("/slide/<int:run_id>/thumbnail.jpg")
    def thumbnail(run_id: int):
        source = tile_source(run_id)
        g = source.geometry
        level = max(lv for lv, (w, h) in enumerate(g.level_dimensions) if max(w, h) <= g.tile_size)
        key = ("thumb", run_id)
        body = cache.get(key)
        if body is None:
            try:
                body = encode(source.tile(level, 0, 0), "jpeg")
            except Her2FastError as exc:
                abort(Response(str(exc), status=500, mimetype="text/plain"))
            cache.put(key, body)
        return Response(body, mimetype="image/jpeg")

    @app.get("/slide/<int:run_id>/<layer>.dzi")
    def overlay_dzi(run_id: int, layer: str):
        if layer not in LAYERS:
            abort(404)
        return Response(tile_source(run_id).geometry.dzi("png"), mimetype="application/xml")

    @app.get("/slide/<int:run_id>/<layer>_files/<int:level>/<int:col>_<int:row>.png")
    def overlay_tile(run_id: int, layer: str, level: int, col: int, row: int):
        if layer not in LAYERS:
            abort(404)
        key = (layer, run_id, level, col, row)
        body = cache.get(key)
        if body is None:
            run = the_run(run_id)
            source = tile_source(run_id)
            data = catalog.data(run_id, run)
            try:
                body = encode(render_overlay(data, source.geometry, layer, level, col, row), "png")
            except InvalidInputError:
                abort(404)
            cache.put(key, body)
        return Response(body, mimetype="image/png")

    @app.get("/slide/<int:run_id>/cell")
    def cell(run_id: int):
        row = the_run(run_id)
        try:
            x, y = float(request.args["x"]), float(request.args["y"])
        except (KeyError, ValueError):
            return jsonify(error="give the point as ?x=&y= in level-0 pixels"), 400
        if not (math.isfinite(x) and math.isfinite(y)):
            return jsonify(error="x and y must be finite numbers"), 400
        data = catalog.data(run_id, row)
        i = data.index.nearest(x, y, CLICK_RADIUS_UM / max(data.mpp, 1e-6))
        if i is None:
            return jsonify(cell=None)
        return jsonify(cell=data.cell_info(i))

    # --------------------------------------------------------------------------------- sign-off
    @app.post("/slide/<int:run_id>/review")
    def review(run_id: int):
        sent = request.form.get("csrf_token", "")
        token = session.get("csrf")
        if not isinstance(token, str) or not sent or not hmac.compare_digest(sent.encode(), token.encode()):
            return error_page(403, "Form expired", "The form's security token is missing or wrong: reload the page.")
        the_run(run_id)
        action = request.form.get("action", "")
        reviewer = request.form.get("reviewer", "")
        try:
            with ResultsStore(catalog.db_path) as store:
                store.add_review(
                    run_id,
                    reviewer,
                    action,
                    score_after=request.form.get("score") or None if action == "override" else None,
                    reason=request.form.get("reason", ""),
                )
        except Her2FastError as exc:
            return error_page(400, "Sign-off not stored", str(exc))
        session["reviewer"] = reviewer.strip()[:MAX_REVIEWER]
        return redirect(url_for("slide_page", run_id=run_id), code=303)

    return app
