"""Benchmarks of seqgen against a minimal pyzmq floor (see benchmarks/bench.py)."""
