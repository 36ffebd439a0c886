"""Many slides and the people who read them: per-slide report files, ``batch`` (local or Dask) and the
``watch`` folder service."""
