"""Side-by-side benchmarks of muslin against Docker and Podman (issue 4). Never run in CI.

Entry: `sudo bench/run [--quick] [--only FIGURE ...]`; see bench/README.md.
"""
