"""Lambertian shading under second-order spherical-harmonic (SH) lighting.

Nine real SH functions (bands l = 0, 1, 2) per colour channel; lighting
coefficients are [..., 3, 9] (one row per RGB channel). Normals are unit
vectors n = (x, y, z) in the model frame (x right, y up, z towards the
viewer). Two conventions, not interchangeable:

* "discofacegan": the basis of Deep3DFaceRecon / DiscoFaceGAN,
  a_l c_lm * (polynomial), with a = (pi, 2 pi / sqrt 3, 2 pi / sqrt 8),
  c = (1/sqrt(4 pi), sqrt 3/sqrt(4 pi), 3 sqrt 5/sqrt(12 pi)) and the
  order/signs
    a0c0, -a1c1 y, a1c1 z, -a1c1 x, a2c2 xy, -a2c2 yz,
    a2c2 (0.5/sqrt 3)(3z^2 - 1), -a2c2 xz, a2c2 0.5 (x^2 - y^2).
  The coefficients gamma are the irradiance directly:
  E(n) = sh_basis(n) . gamma (the a_l play the role of the Lambertian
  kernel; they are not Ramamoorthi-Hanrahan's). DiscoFaceGAN adds 0.8 to
  gamma's constant term as an ambient prior (`DISCOFACEGAN_AMBIENT`); that
  offset is the caller's, not applied here.
* "orthonormal": orthonormal real SH Y_lm in the order (l, m) = (0, 0),
  (1, -1), (1, 0), (1, 1), (2, -2), (2, -1), (2, 0), (2, 1), (2, 2) with the
  graphics sign convention (no Condon-Shortley phase: Y_11 ∝ +x), as in
  Ramamoorthi & Hanrahan (SIGGRAPH 2001). The coefficients L_lm describe
  incoming radiance and E(n) = sum_lm A_l L_lm Y_lm(n) with the clamped-
  cosine kernel A = (pi, 2 pi / 3, pi / 4).

`convert_coefficients` maps one convention to the other (same irradiance).
"""

import math

import jax
import jax.numpy as jnp

_HIGHEST = jax.lax.Precision.HIGHEST
CONVENTIONS = ("discofacegan", "orthonormal")

# Ambient prior added to the constant coefficient by DiscoFaceGAN.
DISCOFACEGAN_AMBIENT = 0.8

# Band of each of the nine coefficients.
_BAND = (0, 1, 1, 1, 2, 2, 2, 2, 2)
# Ramamoorthi-Hanrahan clamped-cosine kernel per band.
LAMBERT_KERNEL = (math.pi, 2.0 * math.pi / 3.0, math.pi / 4.0)
# Deep3DFaceRecon / DiscoFaceGAN constants.
_DFG_A = (math.pi, 2.0 * math.pi / math.sqrt(3.0),
          2.0 * math.pi / math.sqrt(8.0))
_DFG_C = (1.0 / math.sqrt(4.0 * math.pi),
          math.sqrt(3.0) / math.sqrt(4.0 * math.pi),
          3.0 * math.sqrt(5.0) / math.sqrt(12.0 * math.pi))
# Orthonormal real SH normalisation constants.
_Y0 = 0.5 / math.sqrt(math.pi)  # 1/(2 sqrt(pi))
_Y1 = math.sqrt(3.0 / (4.0 * math.pi))
_Y2 = 0.5 * math.sqrt(15.0 / math.pi)
_Y20 = 0.25 * math.sqrt(5.0 / math.pi)
_Y22 = 0.25 * math.sqrt(15.0 / math.pi)
# discofacegan basis = _DFG_SIGN * a_l * orthonormal basis.
_DFG_SIGN = (1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0)


def _check_convention(convention: str) -> str:
  if convention not in CONVENTIONS:
    raise ValueError(f"unknown SH convention {convention!r}; expected one of "
                     f"{CONVENTIONS}")
  return convention


def _check_last(name: str, x: jax.Array, shape: tuple[int, ...]) -> None:
  if x.ndim < len(shape) or tuple(x.shape[x.ndim - len(shape):]) != shape:
    raise ValueError(
        f"{name} must have shape [..., {', '.join(map(str, shape))}], "
        f"got {tuple(x.shape)}")


def _safe_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  """x / |x| over the last axis; zero (with zero gradient) where |x| <= eps."""
  sq = jnp.sum(x * x, axis=-1, keepdims=True)
  ok = sq > eps * eps
  return jnp.where(ok, x / jnp.sqrt(jnp.where(ok, sq, 1.0)), 0.0)


def _orthonormal_basis(normals: jax.Array) -> jax.Array:
  x, y, z = normals[..., 0], normals[..., 1], normals[..., 2]
  return jnp.stack([
      jnp.full_like(x, _Y0),
      _Y1 * y, _Y1 * z, _Y1 * x,
      _Y2 * x * y, _Y2 * y * z, _Y20 * (3.0 * z * z - 1.0), _Y2 * x * z,
      _Y22 * (x * x - y * y),
  ], axis=-1)


def _discofacegan_scale() -> jnp.ndarray:
  """Per-coefficient factor s.t. discofacegan basis = factor * orthonormal."""
  return jnp.array([s * _DFG_A[b] for s, b in zip(_DFG_SIGN, _BAND)],
                   jnp.float32)


def sh_basis(normals: jax.Array, convention: str = "discofacegan"
             ) -> jax.Array:
  """The nine SH basis functions evaluated at unit normals.

  Args:
    normals: [..., 3] unit vectors (not renormalised here).
    convention: "discofacegan" (includes the a_l factors and signs, see the
      module docstring) or "orthonormal" (plain Y_lm).

  Returns:
    [..., 9].
  """
  normals = jnp.asarray(normals)
  _check_last("normals", normals, (3,))
  basis = _orthonormal_basis(normals)
  if _check_convention(convention) == "discofacegan":
    basis = basis * _discofacegan_scale().astype(basis.dtype)
  return basis


def _irradiance_weights(convention: str) -> jnp.ndarray:
  """Per-coefficient factor w with E = sum_k w_k coeff_k Y_k (orthonormal Y)."""
  if _check_convention(convention) == "discofacegan":
    return _discofacegan_scale()
  return jnp.array([LAMBERT_KERNEL[b] for b in _BAND], jnp.float32)


def irradiance(normals: jax.Array, coeffs: jax.Array, *,
               convention: str = "discofacegan") -> jax.Array:
  """RGB irradiance at unit normals under SH lighting.

  Args:
    normals: [..., 3] unit normals.
    coeffs: [..., 3, 9] SH coefficients (RGB rows), batch dims broadcasting
      with those of `normals` (add axes for per-vertex or per-pixel use, or
      call `shade_vertices` / `shade_normal_map`).
    convention: see the module docstring.

  Returns:
    [..., 3] irradiance per channel.
  """
  normals, coeffs = jnp.asarray(normals), jnp.asarray(coeffs)
  _check_last("normals", normals, (3,))
  _check_last("coeffs", coeffs, (3, 9))
  weights = _irradiance_weights(convention).astype(coeffs.dtype)
  basis = _orthonormal_basis(normals)
  return jnp.einsum("...k,...ck->...c", basis, coeffs * weights,
                    precision=_HIGHEST)


def shade(albedo: jax.Array, normals: jax.Array, coeffs: jax.Array, *,
          convention: str = "discofacegan") -> jax.Array:
  """Lambertian colour albedo * irradiance(normals, coeffs).

  Args:
    albedo: [..., 3] RGB albedo.
    normals: [..., 3] unit normals.
    coeffs: [..., 3, 9] (broadcasting as in `irradiance`).
    convention: see the module docstring.

  Returns:
    [..., 3] shaded colour.
  """
  albedo = jnp.asarray(albedo)
  _check_last("albedo", albedo, (3,))
  return albedo * irradiance(normals, coeffs, convention=convention)


def shade_vertices(albedo: jax.Array, normals: jax.Array, coeffs: jax.Array,
                   *, convention: str = "discofacegan",
                   normalize: bool = True) -> jax.Array:
  """Per-vertex Lambertian shading, one lighting per mesh.

  Args:
    albedo: [..., V, 3].
    normals: [..., V, 3] (normalised safely when `normalize`; zero normals
      then receive only the constant and z^2 terms, without NaN).
    coeffs: [..., 3, 9].
    convention: see the module docstring.
    normalize: renormalise the normals first.

  Returns:
    [..., V, 3] shaded colours.
  """
  normals, coeffs = jnp.asarray(normals), jnp.asarray(coeffs)
  _check_last("coeffs", coeffs, (3, 9))
  if normalize:
    normals = _safe_normalize(normals)
  return shade(albedo, normals, coeffs[..., None, :, :],
               convention=convention)


def shade_normal_map(albedo: jax.Array, normals: jax.Array,
                     coeffs: jax.Array, *, convention: str = "discofacegan",
                     normalize: bool = True) -> jax.Array:
  """Lambertian shading of albedo and normal maps, one lighting per image.

  Args:
    albedo: [..., H, W, 3].
    normals: [..., H, W, 3] (normalised safely when `normalize`, e.g. raw
      decoder outputs or zero background pixels).
    coeffs: [..., 3, 9].
    convention: see the module docstring.
    normalize: renormalise the normals first.

  Returns:
    [..., H, W, 3] shaded image.
  """
  normals, coeffs = jnp.asarray(normals), jnp.asarray(coeffs)
  _check_last("coeffs", coeffs, (3, 9))
  if normalize:
    normals = _safe_normalize(normals)
  return shade(albedo, normals, coeffs[..., None, None, :, :],
               convention=convention)


def convert_coefficients(coeffs: jax.Array, *, source: str, target: str
                         ) -> jax.Array:
  """Re-expresses SH lighting in another convention (same irradiance).

  Args:
    coeffs: [..., 3, 9] in convention `source`.
    source: "discofacegan" or "orthonormal".
    target: "discofacegan" or "orthonormal".

  Returns:
    [..., 3, 9] coefficients c' with irradiance(n, c', convention=target)
    == irradiance(n, coeffs, convention=source).
  """
  coeffs = jnp.asarray(coeffs)
  _check_last("coeffs", coeffs, (3, 9))
  ratio = _irradiance_weights(source) / _irradiance_weights(target)
  return coeffs * ratio.astype(coeffs.dtype)


def directional_light_sh(direction: jax.Array, *, color: jax.Array | float,
                         ambient: jax.Array | float = 0.0,
                         convention: str = "discofacegan") -> jax.Array:
  """SH coefficients of a distant directional light plus ambient light.

  The directional light of radiance `color` arriving from the unit
  `direction` (pointing from the surface towards the light) has radiance
  coefficients L_lm = color * Y_lm(direction); its irradiance is the
  9-term approximation of color * max(0, n . direction). The ambient term
  adds a constant irradiance `ambient` to every normal.

  Args:
    direction: [..., 3] light direction (normalised here, zero-safe).
    color: scalar, [...] or [..., 3] RGB intensity of the directional light.
    ambient: scalar, [...] or [..., 3] constant RGB irradiance.
    convention: convention of the returned coefficients.

  Returns:
    [..., 3, 9].
  """
  direction = jnp.asarray(direction)
  _check_last("direction", direction, (3,))
  dtype = direction.dtype if jnp.issubdtype(direction.dtype,
                                            jnp.floating) else jnp.float32
  direction = _safe_normalize(direction.astype(dtype))

  def rgb(v):
    v = jnp.asarray(v, dtype)
    if v.ndim == 0 or v.shape[-1] != 3:
      v = jnp.stack([v, v, v], axis=-1)
    return v

  color, ambient = rgb(color), rgb(ambient)
  radiance = color[..., :, None] * _orthonormal_basis(direction)[..., None, :]
  # Constant irradiance e needs L_00 = e / (A_0 Y_00).
  const = ambient / (LAMBERT_KERNEL[0] * _Y0)
  radiance = radiance + const[..., :, None] * jnp.eye(1, 9, dtype=dtype)
  return convert_coefficients(radiance, source="orthonormal",
                              target=convention)


def relight(image: jax.Array, normals: jax.Array, source_coeffs: jax.Array,
            target_coeffs: jax.Array, *, convention: str = "discofacegan",
            eps: float = 1e-4) -> jax.Array:
  """Relights a Lambertian image by the ratio of target to source shading.

  image * E_target / E_source per pixel and channel, which replaces the
  lighting without knowing the albedo (albedo = image / E_source). Where
  |E_source| < eps the divisor is clamped to eps (keeping its sign).

  Args:
    image: [..., H, W, 3] (or [..., V, 3] with `normals` to match).
    normals: same leading shape as `image`, [..., 3], unit.
    source_coeffs: [..., 3, 9] lighting the image was rendered with.
    target_coeffs: [..., 3, 9] new lighting.
    convention: see the module docstring.
    eps: smallest source irradiance magnitude.

  Returns:
    The relit image, same shape as `image`.
  """
  image, normals = jnp.asarray(image), jnp.asarray(normals)
  if image.shape[-1] != 3 or normals.shape[-1] != 3:
    raise ValueError("image and normals must end in 3 channels, got "
                     f"{tuple(image.shape)} and {tuple(normals.shape)}")
  source_coeffs = jnp.asarray(source_coeffs)
  target_coeffs = jnp.asarray(target_coeffs)
  _check_last("source_coeffs", source_coeffs, (3, 9))
  _check_last("target_coeffs", target_coeffs, (3, 9))
  spatial = image.ndim - 1 - (source_coeffs.ndim - 2)
  if spatial < 0:
    raise ValueError(f"image {tuple(image.shape)} has fewer batch dims than "
                     f"coeffs {tuple(source_coeffs.shape)}")

  def expand(c):
    return c.reshape(c.shape[:-2] + (1,) * spatial + c.shape[-2:])

  e_src = irradiance(normals, expand(source_coeffs), convention=convention)
  e_tgt = irradiance(normals, expand(target_coeffs), convention=convention)
  e_src = jnp.where(jnp.abs(e_src) < eps, jnp.where(e_src < 0, -eps, eps),
                    e_src)
  return image * e_tgt / e_src


def swap_lighting(coeffs: jax.Array, *, shift: int = 1) -> jax.Array:
  """Gives each sample of a batch the lighting of another (a cyclic shift).

  Sample b receives the coefficients of sample (b - shift) mod B, so a
  batch of faces can be re-rendered under each other's lighting (lighting
  swaps for relighting and lighting-invariance objectives).

  Args:
    coeffs: [B, 3, 9].
    shift: cyclic shift along the batch axis.

  Returns:
    [B, 3, 9].
  """
  coeffs = jnp.asarray(coeffs)
  if coeffs.ndim != 3 or coeffs.shape[1:] != (3, 9):
    raise ValueError(f"coeffs must be [B, 3, 9], got {tuple(coeffs.shape)}")
  return jnp.roll(coeffs, shift, axis=0)


__all__ = [
    "CONVENTIONS", "DISCOFACEGAN_AMBIENT", "LAMBERT_KERNEL",
    "convert_coefficients", "directional_light_sh", "irradiance", "relight",
    "sh_basis", "shade", "shade_normal_map", "shade_vertices",
    "swap_lighting",
]
