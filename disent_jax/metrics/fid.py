"""Fréchet distance between feature sets, with a pluggable feature network.

FID (Heusel et al. 2017) is the Fréchet distance between Gaussians fitted to
Inception-v3 pool features. No Inception weights are available to this
project, so the feature network is an argument: a `FeatureExtractor` pairs a
function with a name, and every result carries that name so a report always
says which features a number was computed with ("FD[<name>]", not "FID").
Two weight-free extractors are built in:

* `pixel_features(size)`: area-downsampled RGB pixels (a colour/layout
  statistic);
* `random_conv_features(seed)`: a fixed, randomly initialised conv net
  (random-feature Fréchet distance; sensitive to texture and structure, but
  not comparable with published FID numbers).

Any callable, e.g. a real identity or perception network, can be wrapped the
same way.
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

_HI = jax.lax.Precision.HIGHEST


class FeatureExtractor(NamedTuple):
  """A named feature function.

  Attributes:
    name: a short description reported next to every distance.
    fn: images [B, H, W, 3] (float, [0, 1]) -> features [B, D].
  """
  name: str
  fn: Callable[[jax.Array], jax.Array]


def feature_statistics(features: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mean [D] and unbiased covariance [D, D] of features [N, D] (N >= 2)."""
  f = jnp.asarray(features, jnp.float32)
  if f.ndim != 2 or f.shape[0] < 2:
    raise ValueError(f"features must be [N>=2, D], got {f.shape}.")
  mu = jnp.mean(f, axis=0)
  fc = f - mu
  return mu, jnp.matmul(fc.T, fc, precision=_HI) / (f.shape[0] - 1)


def _sqrt_psd(mat):
  w, v = jnp.linalg.eigh((mat + mat.T) / 2)
  return jnp.matmul(v * jnp.sqrt(jnp.maximum(w, 0.0)), v.T, precision=_HI)


def frechet_distance(mu1: jax.Array, sigma1: jax.Array, mu2: jax.Array,
                     sigma2: jax.Array) -> jax.Array:
  """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) for PSD S1, S2.

  The trace of (S1 S2)^(1/2) is computed as the trace of the PSD square root
  of S1^(1/2) S2 S1^(1/2) (same eigenvalues), with symmetric eigensolvers, so
  the function is jit-able and stays real for singular covariances.

  Args:
    mu1: [D] mean of the first set.
    sigma1: [D, D] covariance of the first set.
    mu2: [D].
    sigma2: [D, D].

  Returns:
    Scalar distance (>= 0 up to rounding).
  """
  mu1, mu2 = jnp.asarray(mu1), jnp.asarray(mu2)
  sigma1, sigma2 = jnp.asarray(sigma1), jnp.asarray(sigma2)
  d = mu1.shape[-1]
  if sigma1.shape != (d, d) or sigma2.shape != (d, d) or mu2.shape != (d,):
    raise ValueError(
        f"shapes must be [D], [D, D]: got {mu1.shape}, {sigma1.shape}, "
        f"{mu2.shape}, {sigma2.shape}.")
  s1h = _sqrt_psd(sigma1)
  inner = jnp.matmul(jnp.matmul(s1h, sigma2, precision=_HI), s1h,
                     precision=_HI)
  w = jnp.linalg.eigvalsh((inner + inner.T) / 2)
  tr_sqrt = jnp.sum(jnp.sqrt(jnp.maximum(w, 0.0)))
  diff = mu1 - mu2
  return (jnp.sum(diff * diff) + jnp.trace(sigma1) + jnp.trace(sigma2)
          - 2.0 * tr_sqrt)


@jax.jit
def _distance_from_features(fa, fb):
  return frechet_distance(*feature_statistics(fa), *feature_statistics(fb))


def _features(images, fn, batch_size):
  x = np.asarray(images, np.float32)
  if x.ndim != 4 or x.shape[-1] != 3:
    raise ValueError(f"images must be [N, H, W, 3], got {x.shape}.")
  return jnp.concatenate([fn(x[i:i + batch_size])
                          for i in range(0, x.shape[0], batch_size)])


def frechet_feature_distance(images_a, images_b, *,
                             extractor: FeatureExtractor,
                             batch_size: int = 256) -> dict:
  """Fréchet distance between two image sets under `extractor`.

  Args:
    images_a: [N, H, W, 3] float images in [0, 1] (e.g. real).
    images_b: [M, H, W, 3] (e.g. generated).
    extractor: the named feature network.
    batch_size: feature-extraction chunk size.

  Returns:
    {"value": the distance, "features": extractor.name, "key":
    "FD[<name>]" (the metric name to report), "num_a", "num_b"}.
  """
  fn = jax.jit(extractor.fn)
  fa = _features(images_a, fn, batch_size)
  fb = _features(images_b, fn, batch_size)
  value = _distance_from_features(fa, fb)
  return {"value": float(value), "features": extractor.name,
          "key": f"FD[{extractor.name}]", "num_a": int(fa.shape[0]),
          "num_b": int(fb.shape[0])}


def pixel_features(size: int = 16) -> FeatureExtractor:
  """Area-downsampled pixels: images [B, H, W, 3] -> [B, size * size * 3].

  H and W must be multiples of `size`.
  """
  def fn(images):
    b, h, w, c = images.shape
    if h % size or w % size:
      raise ValueError(f"image size {h}x{w} is not a multiple of {size}.")
    x = images.reshape(b, size, h // size, size, w // size, c)
    return x.mean(axis=(2, 4)).reshape(b, -1)

  return FeatureExtractor(f"pixels{size}", fn)


def random_conv_features(seed: int = 0, *, widths=(32, 64, 128),
                         ) -> FeatureExtractor:
  """A fixed random conv net (stride-2 3x3 convs, ReLU, global mean+std).

  Weights are drawn from He-normal with `seed`, so the features are the
  same on every machine for a given seed.

  Args:
    seed: weight seed.
    widths: channels of the successive conv layers.

  Returns:
    A `FeatureExtractor` with features of size 2 * widths[-1].
  """
  key = jax.random.PRNGKey(seed)
  kernels = []
  cin = 3
  for i, cout in enumerate(widths):
    k = jax.random.normal(jax.random.fold_in(key, i), (3, 3, cin, cout))
    kernels.append(k * np.sqrt(2.0 / (9 * cin)))
    cin = cout

  def fn(images):
    x = jnp.asarray(images, jnp.float32) * 2.0 - 1.0
    for k in kernels:
      x = jax.lax.conv_general_dilated(
          x, k, window_strides=(2, 2), padding="SAME",
          dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=_HI)
      x = jax.nn.relu(x)
    return jnp.concatenate([x.mean(axis=(1, 2)), x.std(axis=(1, 2))], -1)

  name = f"randconv{'-'.join(map(str, widths))}-seed{seed}"
  return FeatureExtractor(name, fn)

