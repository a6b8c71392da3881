"""Command-line entry points (absl): `disent-jax-train`, `disent-jax-eval`."""
