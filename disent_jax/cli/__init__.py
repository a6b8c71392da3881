"""Command-line entry points: `disent-jax-train`, `disent-jax-eval` (absl)
and `disent-jax-cache-meshes` (argparse)."""
