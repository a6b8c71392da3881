"""Flax linen building blocks (they hold parameters and call pure ops).

  chebconv: Chebyshev graph convolution and mesh pooling layers.
  mesh_autoencoder: CoMA-style `MeshEncoder` / `MeshDecoder`.
  pointnet: PointNet encoder (+ T-Net) and paper 002's pair classifier.
  heads: MLP and Gaussian-VAE heads.
"""

from disent_jax.nn import chebconv
from disent_jax.nn import heads
from disent_jax.nn import mesh_autoencoder
from disent_jax.nn import pointnet

__all__ = ["chebconv", "heads", "mesh_autoencoder", "pointnet"]
