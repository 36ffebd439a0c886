"""Bytes in and out: slides (OpenSlide, plain images) and the results store."""
