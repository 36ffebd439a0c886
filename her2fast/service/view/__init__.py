"""``her2fast view``: review a results store in the browser and sign off its scores.

:func:`create_app` is a Flask application (the optional extra ``her2fast[view]``: Flask and waitress) over
the :class:`~her2fast.io.store.ResultsStore` that ``her2fast batch`` and ``her2fast watch`` fill:

- a worklist of every slide (score, stratum, % complete, confidence, flags, status, thumbnail), sortable
  and filterable in the page;
- a slide page with the slide in a deep-zoom viewer (OpenSeadragon, shipped in the package with its
  licence; tiles from OpenSlide's :class:`~openslide.deepzoom.DeepZoomGenerator`, or from her2fast's own
  reader for plain images), overlays drawn as tiles (tumour cells by class, epithelium outline, % complete
  heat map), a cell's measurements on click, the result and its provenance;
- a sign-off (accept, or override with a reason) stored as a row of table ``reviews``
  (:meth:`~her2fast.io.store.ResultsStore.add_review`); the algorithm's row is never changed.

:func:`serve` runs it on waitress, a multi-threaded WSGI server, bound to 127.0.0.1 unless told otherwise.
See docs/view.md.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from ...errors import MissingExtraError

__all__ = ["create_app", "serve", "make_server", "address", "ServerThread", "LOOPBACK"]

#: host names that only this machine reaches
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _require_flask() -> None:
    try:
        import flask  # noqa: F401
    except ImportError:
        raise MissingExtraError("her2fast view needs Flask and waitress: pip install 'her2fast[view]'") from None


def create_app(location: str | Path, **options):
    """The viewer's Flask application (see :func:`her2fast.service.view.app.create_app`)."""
    from .app import create_app as _create

    return _create(location, **options)


def serve(location: str | Path, *, host: str = "127.0.0.1", port: int = 8000, threads: int = 8, stream=None):
    """Serve the viewer until interrupted.

    Parameters
    ----------
    location : path
        The results store (output folder or database file).
    host : str
        Address to listen on; anything but the loopback opens the viewer (and the sign-off) to the network
        and prints a warning.
    port : int
        TCP port (0: any free port; the address is printed).
    threads : int
        Requests served at once.
    stream : file, optional
        Where the address and warnings are printed (default: stderr).

    Raises
    ------
    MissingExtraError
        Flask or waitress is not installed.
    StoreError
        No results store at ``location``.
    """
    stream = sys.stderr if stream is None else stream
    app = create_app(location, trusted_hosts=list(LOOPBACK) if host in LOOPBACK else None)
    served = ServerThread(app, host=host, port=port, threads=threads)
    if host not in LOOPBACK:
        print(
            f"her2fast view: warning: listening on {host}: anyone who reaches this machine can see the slides and "
            "sign off scores; there is no login",
            file=stream,
        )
    print(f"her2fast view: serving {app.extensions['her2fast_catalog'].db_path} at {served.url}", file=stream)
    print("her2fast view: press Ctrl-C to stop", file=stream, flush=True)
    # the server runs on a thread; this thread waits for Ctrl-C or SIGTERM, which then always stop it (an
    # interrupt raised inside the server's own loop could be swallowed there and leave it running)
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    served.start()
    try:
        while not stop.wait(0.5) and served._thread.is_alive():
            pass
    except KeyboardInterrupt:
        pass
    finally:
        served.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def make_server(app, *, host: str = "127.0.0.1", port: int = 0, threads: int = 8):
    """A waitress server for ``app`` (not yet running: call ``run()``, ``close()`` to stop)."""
    try:
        from waitress.server import create_server
    except ImportError:
        raise MissingExtraError("her2fast view needs waitress: pip install 'her2fast[view]'") from None
    return create_server(app, host=host, port=int(port), threads=int(threads), ident="her2fast")


def address(server) -> str:
    """``http://host:port/`` of a server from :func:`make_server`."""
    host, port = server.effective_host, server.effective_port
    if ":" in str(host):
        host = f"[{host}]"
    return f"http://{host}:{port}/"


class ServerThread:
    """The viewer served from a background thread (for tests, benchmarks and embedding); a context manager.

    Parameters
    ----------
    app : flask.Flask
        From :func:`create_app`.
    host : str
    port : int
        0: any free port (see :attr:`url`).
    threads : int

    Attributes
    ----------
    url : str
        ``http://host:port/``.
    """

    def __init__(self, app, *, host: str = "127.0.0.1", port: int = 0, threads: int = 8) -> None:
        self.server = make_server(app, host=host, port=port, threads=threads)
        self.url = address(self.server)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="her2fast-view", daemon=True)

    def _run(self) -> None:
        try:
            self.server.run()
        except (OSError, ValueError):  # the listening socket closed under select() by stop()
            if not self._stopping:
                raise

    def start(self) -> ServerThread:
        """Start serving; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread (at most 10 s)."""
        self._stopping = True
        self.server.task_dispatcher.shutdown()
        self.server.close()
        self._thread.join(10)
        for channel in list(getattr(self.server, "_map", {}).values()):  # connections still open
            channel.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
