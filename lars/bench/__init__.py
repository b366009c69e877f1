"""Benchmarks of the reactor: the echo server and its multi-process client (spec section 10)."""
