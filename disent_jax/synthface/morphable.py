"""The world's linear 3DMM: PCA bases of identity, expression and texture.

SynthFace identity and expression act nonlinearly, so a linear morphable
model (mean face plus PCA bases, the world's stand-in for BFM) explains most
but not all of the shape variance. Fitting it to a sample gives coefficients
that play the role of the papers' pseudo ground truth from 3DMM fitting;
`fit(..., noise=...)` adds fitting noise.

Coefficients are in units of the component standard deviation:
shape = mean + B_id (s_id * a) + B_exp (s_exp * b), with orthonormal bases.
"""

from __future__ import annotations

import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from disent_jax.synthface import albedo as alb
from disent_jax.synthface import expression as expr
from disent_jax.synthface import identity as idn
from disent_jax.synthface import sampling
from disent_jax.synthface import template as tpl

_HIGHEST = jax.lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class Morphable:
  """A linear 3DMM.

  Attributes:
    mean: [V, 3] mean neutral shape (mm).
    id_basis: [3V, Ki] orthonormal identity basis; id_std: [Ki].
    exp_basis: [3V, Ke] orthonormal expression basis; exp_std: [Ke].
    tex_mean: [V, 3] mean albedo; tex_basis: [3V, Kt]; tex_std: [Kt].
    faces: [F, 3] int32 triangles; landmarks: [68] int32 vertex indices.
    identity_explained: fraction of held-out identity (neutral shape)
      variance the identity basis explains.
    expression_explained: the same for expression offsets.
  """
  mean: np.ndarray
  id_basis: np.ndarray
  id_std: np.ndarray
  exp_basis: np.ndarray
  exp_std: np.ndarray
  tex_mean: np.ndarray
  tex_basis: np.ndarray
  tex_std: np.ndarray
  faces: np.ndarray
  landmarks: np.ndarray
  identity_explained: float = float("nan")
  expression_explained: float = float("nan")

  @property
  def num_identity(self) -> int:
    return int(self.id_basis.shape[1])

  @property
  def num_expression(self) -> int:
    return int(self.exp_basis.shape[1])

  @property
  def num_texture(self) -> int:
    return int(self.tex_basis.shape[1])

  def save(self, path: str | pathlib.Path) -> None:
    """Writes the model to an .npz file."""
    np.savez(path, **{f.name: np.asarray(getattr(self, f.name))
                      for f in dataclasses.fields(self)})

  @classmethod
  def load(cls, path: str | pathlib.Path) -> "Morphable":
    """Reads a model written by `save`."""
    with np.load(path) as data:
      missing = [f.name for f in dataclasses.fields(cls)
                 if f.name not in data]
      if missing:
        raise ValueError(f"{path}: not a Morphable file, missing {missing}")
      kw = {f.name: data[f.name] for f in dataclasses.fields(cls)}
    for name in ("identity_explained", "expression_explained"):
      kw[name] = float(kw[name])
    return cls(**kw)


def pca(samples: np.ndarray, num_components: int, *, center: bool = True
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """PCA of [N, D] samples.

  Returns:
    (mean [D], basis [D, K] orthonormal columns, std [K]) with the sample
    standard deviation of each component (N - 1 normalisation).
  """
  samples = np.asarray(samples, np.float64)
  if samples.ndim != 2:
    raise ValueError(f"samples must be [N, D], got {samples.shape}")
  n = samples.shape[0]
  if not 0 < num_components <= min(samples.shape):
    raise ValueError(f"num_components={num_components} must be in "
                     f"[1, {min(samples.shape)}]")
  mean = samples.mean(axis=0) if center else np.zeros(samples.shape[1])
  _, s, vt = np.linalg.svd(samples - mean, full_matrices=False)
  std = s[:num_components] / np.sqrt(max(n - 1, 1))
  return mean, vt[:num_components].T, std


def explained_fraction(samples: np.ndarray, mean: np.ndarray,
                       basis: np.ndarray) -> float:
  """Fraction of the variance of [N, D] samples about `mean` in the span."""
  x = np.asarray(samples, np.float64) - mean
  resid = x - (x @ basis) @ basis.T
  return float(1.0 - np.sum(resid**2) / np.sum(x**2))


def _world_samples(template, *, seed, num_subjects, num_expressions):
  params = jax.vmap(sampling.subject_identity, in_axes=(None, 0))(
      seed, jnp.arange(num_subjects))
  neutral = jax.jit(jax.vmap(lambda p: idn.neutral(p, template)))(params)
  albedo = jax.jit(jax.vmap(lambda p: alb.albedo(p, template)))(params)
  keys = jax.vmap(lambda i: sampling.example_key(seed, i))(
      jnp.arange(num_expressions))
  weights = jax.vmap(lambda k: sampling.sample_expression(
      k, neutral_prob=0.0))(keys)
  who = jnp.arange(num_expressions) % num_subjects

  def offset(p, n, w):
    return expr.apply_expression(n, p, w, template) - n

  offsets = jax.jit(jax.vmap(offset))(params[who], neutral[who], weights)
  return np.asarray(neutral), np.asarray(offsets), np.asarray(albedo)


def build(resolution: str = "1k", *, seed: int = 0, num_subjects: int = 300,
          num_expressions: int = 600, num_identity: int = 30,
          num_expression: int = 24, num_texture: int = 6,
          held_out: float = 0.2) -> Morphable:
  """Fits the world's 3DMM by PCA of sampled subjects and expressions.

  The explained fractions are measured on a held-out `held_out` share of the
  subjects and expression samples.

  Args:
    resolution: template resolution.
    seed: world seed of the sampled subjects (use a seed not used for data).
    num_subjects: subjects sampled for identity and texture.
    num_expressions: (subject, expression) samples for the expression basis.
    num_identity, num_expression, num_texture: basis sizes.
    held_out: fraction of samples kept out of the fit for the report.

  Returns:
    The fitted `Morphable`.
  """
  t = tpl.template(resolution)
  neutral, offsets, albedo = _world_samples(
      t, seed=seed, num_subjects=num_subjects,
      num_expressions=num_expressions)
  v = t.num_vertices
  n_fit = int(round(num_subjects * (1.0 - held_out)))
  e_fit = int(round(num_expressions * (1.0 - held_out)))
  shapes = neutral.reshape(num_subjects, 3 * v)
  mean, id_basis, id_std = pca(shapes[:n_fit], num_identity)
  offs = offsets.reshape(num_expressions, 3 * v)
  _, exp_basis, exp_std = pca(offs[:e_fit], num_expression, center=False)
  tex = albedo.reshape(num_subjects, 3 * v)
  tex_mean, tex_basis, tex_std = pca(tex[:n_fit], num_texture)
  id_explained = explained_fraction(shapes[n_fit:], mean, id_basis)
  exp_explained = explained_fraction(offs[e_fit:], np.zeros(3 * v),
                                     exp_basis)
  return Morphable(
      mean=mean.reshape(v, 3).astype(np.float32),
      id_basis=id_basis.astype(np.float32), id_std=id_std.astype(np.float32),
      exp_basis=exp_basis.astype(np.float32),
      exp_std=exp_std.astype(np.float32),
      tex_mean=tex_mean.reshape(v, 3).astype(np.float32),
      tex_basis=tex_basis.astype(np.float32),
      tex_std=tex_std.astype(np.float32),
      faces=t.faces.astype(np.int32), landmarks=t.landmarks.astype(np.int32),
      identity_explained=id_explained, expression_explained=exp_explained)


def reconstruct(model: Morphable, id_coeffs: jax.Array,
                exp_coeffs: jax.Array) -> jax.Array:
  """Shape [..., V, 3] of coefficients [..., Ki] and [..., Ke]."""
  id_coeffs = jnp.asarray(id_coeffs, jnp.float32)
  exp_coeffs = jnp.asarray(exp_coeffs, jnp.float32)
  if id_coeffs.shape[-1] != model.num_identity:
    raise ValueError(f"id_coeffs must end in {model.num_identity}, got "
                     f"{id_coeffs.shape}")
  if exp_coeffs.shape[-1] != model.num_expression:
    raise ValueError(f"exp_coeffs must end in {model.num_expression}, got "
                     f"{exp_coeffs.shape}")
  d = (jnp.matmul(id_coeffs * model.id_std, model.id_basis.T,
                  precision=_HIGHEST)
       + jnp.matmul(exp_coeffs * model.exp_std, model.exp_basis.T,
                    precision=_HIGHEST))
  return model.mean + d.reshape(d.shape[:-1] + (-1, 3))


def reconstruct_texture(model: Morphable, tex_coeffs: jax.Array) -> jax.Array:
  """Albedo [..., V, 3] of texture coefficients [..., Kt]."""
  tex_coeffs = jnp.asarray(tex_coeffs, jnp.float32)
  d = jnp.matmul(tex_coeffs * model.tex_std, model.tex_basis.T,
                 precision=_HIGHEST)
  return model.tex_mean + d.reshape(d.shape[:-1] + (-1, 3))


def fit(model: Morphable, vertices: jax.Array, *, noise: float = 0.0,
        key: jax.Array | None = None, ridge: float = 1e-4
        ) -> tuple[jax.Array, jax.Array]:
  """Least-squares 3DMM fit of shapes, with optional fitting noise.

  Solves min ||[B_id S_id, B_exp S_exp] c - (x - mean)||^2 + ridge ||c||^2
  jointly for identity and expression coefficients, then adds
  `noise * N(0, 1)` to every coefficient (coefficients are in units of the
  component std), mimicking a 3DMM fit from images.

  Args:
    model: the 3DMM.
    vertices: [..., V, 3] shapes in mm.
    noise: standard deviation of the added coefficient noise.
    key: PRNG key, required when noise > 0.
    ridge: Tikhonov regulariser on the coefficients.

  Returns:
    (id_coeffs [..., Ki], exp_coeffs [..., Ke]).
  """
  vertices = jnp.asarray(vertices, jnp.float32)
  v = model.mean.shape[0]
  if vertices.shape[-2:] != (v, 3):
    raise ValueError(f"vertices must end in ({v}, 3), got {vertices.shape}")
  if noise < 0:
    raise ValueError(f"noise must be >= 0, got {noise}")
  if noise > 0 and key is None:
    raise ValueError("a key is needed when noise > 0")
  a = np.concatenate([model.id_basis * model.id_std,
                      model.exp_basis * model.exp_std], axis=1)
  a = a.astype(np.float64)
  normal = a.T @ a + ridge * np.eye(a.shape[1])
  solve = jnp.asarray(np.linalg.solve(normal, a.T), jnp.float32)
  x = (vertices - model.mean).reshape(vertices.shape[:-2] + (3 * v,))
  c = jnp.matmul(x, solve.T, precision=_HIGHEST)
  if noise > 0:
    c = c + noise * jax.random.normal(key, c.shape, c.dtype)
  return c[..., :model.num_identity], c[..., model.num_identity:]


def fit_texture(model: Morphable, albedo: jax.Array, *, noise: float = 0.0,
                key: jax.Array | None = None) -> jax.Array:
  """Texture coefficients [..., Kt] of albedos [..., V, 3] (+ noise)."""
  albedo = jnp.asarray(albedo, jnp.float32)
  v = model.tex_mean.shape[0]
  if albedo.shape[-2:] != (v, 3):
    raise ValueError(f"albedo must end in ({v}, 3), got {albedo.shape}")
  if noise > 0 and key is None:
    raise ValueError("a key is needed when noise > 0")
  x = (albedo - model.tex_mean).reshape(albedo.shape[:-2] + (3 * v,))
  c = jnp.matmul(x, jnp.asarray(model.tex_basis), precision=_HIGHEST)
  c = c / model.tex_std
  if noise > 0:
    c = c + noise * jax.random.normal(key, c.shape, c.dtype)
  return c
