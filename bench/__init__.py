"""Benchmarks of the merge, its scaling, the flow's orchestration and the container: ``python -m bench``."""
