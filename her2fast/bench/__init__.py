"""Benchmarks that print ratios against reference implementations measured in the same run."""
