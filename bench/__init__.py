"""Benchmarks (not timed tests): `python -m bench {book,bn,grading,gpu}`; figures go to bench/results/."""
