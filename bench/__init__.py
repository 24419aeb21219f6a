"""Benchmarks run by hand: ratios against baselines measured in the same run (not tests)."""
