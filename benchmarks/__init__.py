"""Herald's benchmarks: one directory per benchmark, each with a run.py (see scripts/bench.sh)."""
