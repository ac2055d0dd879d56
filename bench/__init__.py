"""The benchmarks: each a module run from the repository's root, `python -m bench.<name>` (README.md).

bench.harness holds what they share: a fresh local stack in a folder of its own, and the results
writer. Tests import the modules as they are (`from bench import chaos`).
"""
