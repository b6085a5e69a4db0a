"""optdbg's benchmark suite: `python -m bench` (see run.py). Not installed with the package."""
