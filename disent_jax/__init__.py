"""disent_jax: disentangled face representations in JAX/Flax.

Subpackages:
  ops: pure differentiable math (tensor contractions, SH shading, cameras,
    rasterization, graph and mesh operators).
  nn: Flax linen building blocks.
  losses, metrics: pure loss and evaluation functions.
  synthface: the embedded procedural face world.
  data: dataset builders, readers and input pipelines.
  train: the generic training harness.
  methods: one subpackage per paper.
  viz: figures.
"""

__version__ = "0.1.0"
