"""SynthFace identity: parameters -> the subject's neutral face in millimetres.

A subject is a vector of `NUM_IDENTITY` standardised parameters (about N(0, 1),
clipped to [-3, 3]); `physical(params)` turns it into measurements in mm. The
neutral surface is a smooth map of the template domain (u, v):

- an in-plane warp: a monotone vertical profile through the subject's feature
  heights (chin, mouth, nose base, eyes, brows, hairline), a width profile, and
  local Gaussian-windowed shifts and scalings (eye spacing and size, canthal
  tilt, nose and mouth width, lip heights);
- a depth made of an ellipsoidal base plus anisotropic bumps and ridges (nose,
  eye sockets and eyeballs, brow ridge, cheekbones, lips, chin) centred on the
  subject's warped feature points, with identity-dependent sizes.

Feature positions and widths move with the parameters, so identity acts
nonlinearly on vertex positions. Model frame: x to the image right, y up,
z towards the viewer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from disent_jax.synthface import template as tpl

IDENTITY_PARAMS = (
    # Geometry.
    "face_width", "face_height", "face_depth", "forehead_height",
    "forehead_slope", "brow_ridge", "eye_spacing", "eye_size", "eye_opening",
    "eye_depth", "eye_tilt", "nose_length", "nose_width", "nose_projection",
    "nose_bridge", "nose_tip", "cheekbone_prominence", "cheekbone_height",
    "cheek_fullness", "jaw_width", "jaw_taper", "chin_length",
    "chin_projection", "chin_width", "mouth_width", "philtrum_length",
    "upper_lip", "lower_lip", "lip_projection", "brow_height",
    # Appearance (albedo).
    "skin_tone", "skin_warmth", "lip_colour", "brow_darkness", "cheek_blush",
    "iris_colour",
)
NUM_IDENTITY = len(IDENTITY_PARAMS)
NUM_GEOMETRY = IDENTITY_PARAMS.index("skin_tone")
PARAM_CLIP = 3.0

# (mean, std) of each geometric measurement; lengths in mm, angles in rad.
_PHYSICAL = {
    "face_width": (70.0, 4.0),         # half width at the cheekbones
    "face_height": (1.0, 0.04),        # global vertical scale
    "face_depth": (1.0, 0.09),         # base curvature scale
    "forehead_height": (57.0, 5.0),    # brow line to hairline
    "forehead_slope": (1.0, 0.25),
    "brow_ridge": (3.5, 1.1),
    "eye_spacing": (31.5, 1.7),        # half inter-pupillary distance
    "eye_size": (1.0, 0.06),
    "eye_opening": (1.0, 0.1),
    "eye_depth": (7.0, 1.5),
    "eye_tilt": (0.06, 0.045),
    "nose_length": (51.0, 3.5),        # eye line to subnasale
    "nose_width": (1.0, 0.09),
    "nose_projection": (20.0, 2.3),
    "nose_bridge": (1.0, 0.15),
    "nose_tip": (1.0, 0.12),
    "cheekbone_prominence": (6.0, 1.8),
    "cheekbone_height": (0.0, 3.5),
    "cheek_fullness": (2.0, 1.8),
    "jaw_width": (0.06, 0.05),
    "jaw_taper": (0.0, 0.06),
    "chin_length": (42.0, 3.2),        # mouth line to menton
    "chin_projection": (5.0, 1.8),
    "chin_width": (16.0, 2.2),
    "mouth_width": (25.0, 1.9),        # half width
    "philtrum_length": (21.0, 2.0),    # subnasale to stomion
    "upper_lip": (8.5, 1.1),
    "lower_lip": (10.0, 1.3),
    "lip_projection": (4.5, 1.0),
    "brow_height": (15.0, 1.8),        # eye line to brow line
}

# Extra feature points appended to the 68 landmarks: eye centres.
_FEATURE_UV = jnp.concatenate([
    jnp.asarray(tpl.LANDMARKS_UV, jnp.float32),
    jnp.asarray([[-tpl.U_EYE, tpl.V_EYE], [tpl.U_EYE, tpl.V_EYE]],
                jnp.float32)])
EYE_CENTRE_L = 68
EYE_CENTRE_R = 69


def _check_params(params: jax.Array) -> jax.Array:
  params = jnp.asarray(params, jnp.float32)
  if params.shape != (NUM_IDENTITY,):
    raise ValueError(
        f"identity params must have shape ({NUM_IDENTITY},), got "
        f"{params.shape}")
  return jnp.clip(params, -PARAM_CLIP, PARAM_CLIP)


def physical(params: jax.Array) -> dict[str, jax.Array]:
  """Geometric measurements of a subject.

  Args:
    params: [NUM_IDENTITY] standardised identity parameters.

  Returns:
    A dict name -> scalar in mm (or a ratio / radians) for each geometric
    parameter.
  """
  params = _check_params(params)
  return {name: mean + std * params[i]
          for i, (name, (mean, std)) in enumerate(_PHYSICAL.items())}


def _pchip(x: jax.Array, xk: jax.Array, yk: jax.Array) -> jax.Array:
  """Monotone cubic (Fritsch-Carlson) interpolation; yk increasing."""
  h = xk[1:] - xk[:-1]
  delta = (yk[1:] - yk[:-1]) / h
  w1 = 2.0 * h[1:] + h[:-1]
  w2 = h[1:] + 2.0 * h[:-1]
  inner = (w1 + w2) / (w1 / delta[:-1] + w2 / delta[1:])
  d = jnp.concatenate([delta[:1], inner, delta[-1:]])
  i = jnp.clip(jnp.searchsorted(xk, x) - 1, 0, xk.shape[0] - 2)
  t = (x - xk[i]) / h[i]
  t2, t3 = t * t, t * t * t
  return ((2 * t3 - 3 * t2 + 1) * yk[i] + (t3 - 2 * t2 + t) * h[i] * d[i]
          + (-2 * t3 + 3 * t2) * yk[i + 1] + (t3 - t2) * h[i] * d[i + 1])


def _gauss(d: jax.Array, sigma) -> jax.Array:
  return jnp.exp(-0.5 * (d / sigma)**2)


def _width_profile(v: jax.Array, p: dict[str, jax.Array]) -> jax.Array:
  return (1.0 + p["jaw_width"] * _gauss(v + 0.62, 0.22)
          + p["jaw_taper"] * _gauss(v + 0.9, 0.15)
          + 0.06 * _gauss(v - 0.75, 0.25))


def warp(uv: jax.Array, params: jax.Array) -> jax.Array:
  """In-plane warp of template points to the subject's face, in mm.

  Args:
    uv: [N, 2] template coordinates.
    params: [NUM_IDENTITY] identity parameters.

  Returns:
    [N, 2] (x, y) in mm; y = 0 on the eye line.
  """
  p = physical(params)
  u, v = uv[..., 0], uv[..., 1]
  # Vertical profile through the feature heights.
  hs = p["face_height"]
  nose, phil, chin = p["nose_length"], p["philtrum_length"], p["chin_length"]
  vk = jnp.asarray([tpl.V_CHIN - 0.1, tpl.V_CHIN, tpl.V_MOUTH,
                    tpl.V_NOSE_BASE, tpl.V_EYE, tpl.V_BROW, tpl.V_TOP,
                    tpl.V_TOP + 0.1], jnp.float32)
  yk = hs * jnp.stack([
      -(nose + phil + chin) - 9.0, -(nose + phil + chin), -(nose + phil),
      -nose, jnp.zeros(()), p["brow_height"],
      p["brow_height"] + p["forehead_height"],
      p["brow_height"] + p["forehead_height"] + 9.0])
  y = _pchip(v, vk, yk)
  wdt = p["face_width"] * _width_profile(v, p)
  x = u * wdt
  au = jnp.abs(u)
  side = jnp.tanh(u / 0.04)
  # Eyes: spacing (a horizontal scaling, flat between the eyes), size,
  # opening and canthal tilt.
  g_eye = _gauss(jnp.maximum(au - tpl.U_EYE, 0.0), 0.3) * _gauss(
      v - tpl.V_EYE, 0.2)
  s_eye = p["eye_spacing"] / (tpl.U_EYE * p["face_width"])
  dx = (s_eye - 1.0) * x * g_eye
  g_small = _gauss(au - tpl.U_EYE, 0.2) * _gauss(v - tpl.V_EYE, 0.1)
  ex = side * tpl.U_EYE * p["face_width"]
  lx = x - ex
  dx = dx + (p["eye_size"] - 1.0) * lx * g_small
  dy = ((p["eye_size"] * p["eye_opening"] - 1.0) * y
        + jnp.tan(p["eye_tilt"]) * side * lx) * g_small
  # Nose width.
  g_nose = _gauss(u, 0.3) * _gauss(v + 0.27, 0.15)
  dx = dx + (p["nose_width"] - 1.0) * x * g_nose
  # Mouth width and lip heights, about the mouth line.
  wm = p["face_width"] * _width_profile(jnp.float32(tpl.V_MOUTH), p)
  g_mouth_u = jnp.exp(-0.5 * (u / 0.5)**4)
  g_mouth = g_mouth_u * _gauss(v - tpl.V_MOUTH, 0.13)
  s_mouth = p["mouth_width"] / (tpl.U_MOUTH_CORNER * wm * 0.87)
  dx = dx + (s_mouth - 1.0) * x * g_mouth
  ym = -(nose + phil) * hs
  dym = y - ym
  slope = 0.5 * (yk[3] - yk[2]) / (tpl.V_NOSE_BASE - tpl.V_MOUTH) + 0.5 * (
      yk[2] - yk[1]) / (tpl.V_MOUTH - tpl.V_CHIN)
  s_up = p["upper_lip"] / (tpl.UPPER_LIP * slope)
  s_lo = p["lower_lip"] / (tpl.LOWER_LIP * slope)
  g_lip = g_mouth_u * jnp.where(
      v >= tpl.V_MOUTH, _gauss(v - tpl.V_MOUTH, 0.1),
      _gauss(v - tpl.V_MOUTH, 0.12))
  dy = dy + jnp.where(v >= tpl.V_MOUTH, s_up - 1.0, s_lo - 1.0) * dym * g_lip
  return jnp.stack([x + dx, y + dy], axis=-1)


def features(params: jax.Array) -> jax.Array:
  """Feature points of the subject in mm, [70, 2].

  Rows 0-67 are the 68 landmarks (in-plane), 68/69 the eye centres.
  """
  return warp(_FEATURE_UV, params)


def depth(uv: jax.Array, xy: jax.Array, params: jax.Array,
          feats: jax.Array) -> jax.Array:
  """Depth z (mm, towards the viewer) of the neutral surface.

  Args:
    uv: [N, 2] template coordinates.
    xy: [N, 2] warped in-plane coordinates (`warp(uv, params)`).
    params: [NUM_IDENTITY] identity parameters.
    feats: [70, 2] `features(params)`.

  Returns:
    [N] depth in mm.
  """
  p = physical(params)
  z = jnp.zeros(uv.shape[:-1], jnp.float32)
  x, y = xy[..., 0], xy[..., 1]
  ax = jnp.abs(x)
  # Nose: a ridge from the nasion to the tip, a sharp underside, tip, alae.
  nasion, tip = feats[27], feats[30]
  axis = tip - nasion
  t = ((x - nasion[0]) * axis[0] + (y - nasion[1]) * axis[1]) / jnp.sum(
      axis * axis)
  s_t = jnp.where(t < 1.0, 0.78, 0.16 * p["nose_tip"])
  h = p["nose_projection"] * jnp.exp(-0.5 * ((t - 1.0) / s_t)**2)
  h = h * (1.0 + (p["nose_bridge"] - 1.0) * _gauss(t - 0.25, 0.3))
  w_n = 6.0 * jnp.sqrt(p["nose_width"]) + (
      8.5 * p["nose_width"] - 6.0 * jnp.sqrt(p["nose_width"])) * jnp.clip(
          t, 0.0, 1.0)
  z = z + h * _gauss(x - nasion[0] - t * axis[0], w_n)
  z = z + 2.5 * p["nose_tip"] * _gauss(
      jnp.hypot(x - tip[0], y - tip[1] + 2.0), 6.0 * p["nose_tip"])
  ala = feats[35]
  z = z + 6.0 * _gauss(ax - (ala[0] - 3.5), 5.5) * _gauss(y - ala[1] - 4.0,
                                                             5.0)
  # Eye sockets with eyeballs.
  for c in (EYE_CENTRE_L, EYE_CENTRE_R):
    e = feats[c]
    ew = 0.5 * jnp.abs(feats[45, 0] - feats[42, 0])
    z = z - p["eye_depth"] * _gauss(x - e[0], 0.8 * ew) * _gauss(
        y - e[1] - 2.0, 9.0)
    z = z + 0.6 * p["eye_depth"] * _gauss(x - e[0], 0.62 * ew) * _gauss(
        y - e[1], 0.5 * ew)
  # Brow ridge.
  yb = 0.5 * (feats[19, 1] + feats[24, 1]) - 3.0 - 0.004 * (ax - 30.0)**2
  z = z + p["brow_ridge"] * _gauss(y - yb, 6.0) * jnp.exp(
      -0.5 * ((ax - 30.0) / 26.0)**4)
  # Cheekbones and cheeks.
  ey = feats[EYE_CENTRE_R, 1]
  mouth_y = feats[62, 1]
  cb = p["cheekbone_prominence"]
  z = z + cb * _gauss(ax - 0.63 * p["face_width"], 11.0 + cb) * _gauss(
      y - (ey - 24.0 + p["cheekbone_height"]), 8.0 + cb)
  z = z + p["cheek_fullness"] * _gauss(ax - 0.52 * p["face_width"], 18.0) * (
      _gauss(y - (mouth_y + 8.0), 16.0))
  # Lips with a seam, the mentolabial sulcus and the chin.
  cx = jnp.abs(feats[54, 0])
  lu = jnp.maximum(1.0 - (x / (1.1 * cx))**2, 0.0)**2
  ul, ll = p["upper_lip"], p["lower_lip"]
  lp = p["lip_projection"]
  shape = 0.5 + 0.5 * lu
  z = z + lp * lu * _gauss(y - (mouth_y + 0.5 * ul * shape),
                           0.55 * ul * (0.6 + 0.4 * lu))
  z = z + 1.15 * lp * lu * _gauss(y - (mouth_y - 0.5 * ll * shape),
                                  0.55 * ll * (0.6 + 0.4 * lu))
  z = z - 1.2 * lu * _gauss(y - mouth_y, 1.2)
  z = z - 2.5 * _gauss(x, 18.0) * _gauss(y - (mouth_y - ll - 6.0), 4.5)
  chin_y = feats[8, 1]
  cp = p["chin_projection"]
  z = z + cp * _gauss(x, p["chin_width"]) * _gauss(
      y - (chin_y + 12.0 + cp), 8.0 + cp)
  # The depth scale acts on the whole relief.
  return p["face_depth"] * (z + base_depth(uv, params, scaled=False))


def base_depth(uv: jax.Array, params: jax.Array, *,
               scaled: bool = True) -> jax.Array:
  """The smooth ellipsoidal base of the face, [N] mm (0 at the centre).

  Args:
    uv: [N, 2] template coordinates.
    params: [NUM_IDENTITY] identity parameters.
    scaled: multiply by the subject's depth scale.
  """
  p = physical(params)
  u, v = uv[..., 0], uv[..., 1]
  curve_u = 1.15 * p["face_width"] * (1.0 - jnp.sqrt(1.0 - 0.93 * u * u))
  fore = 25.0 * p["forehead_slope"] * jnp.maximum(v - 0.3, 0.0)**2 / 0.49
  lower = 14.0 * jnp.maximum(-v - 0.35, 0.0)**2 / 0.42
  rim = 30.0 * (u * u + v * v)**4
  base = -(curve_u + 10.0 * v * v + fore + lower + rim)
  return p["face_depth"] * base if scaled else base


CAVITY_DEPTH = 7.0


def surface(uv: jax.Array, params: jax.Array, *,
            cavity: jax.Array | None = None) -> jax.Array:
  """Neutral surface points of template coordinates, [N, 3] mm.

  Args:
    uv: [N, 2] template coordinates.
    params: [NUM_IDENTITY] identity parameters.
    cavity: optional [N] bool; those points lie on the oral-cavity patch
      (the base surface set back by `CAVITY_DEPTH`).

  Returns:
    [N, 3] points (x, y, z) in mm.
  """
  uv = jnp.asarray(uv, jnp.float32)
  if uv.ndim != 2 or uv.shape[-1] != 2:
    raise ValueError(f"uv must have shape [N, 2], got {uv.shape}")
  params = _check_params(params)
  feats = features(params)
  xy = warp(uv, params)
  z = depth(uv, xy, params, feats)
  if cavity is not None:
    z_cav = base_depth(uv, params) - CAVITY_DEPTH
    z = jnp.where(cavity, z_cav, z)
  return _profile_rotations(uv, xy, z, params, feats)


def _rotate_yz(y, z, angle, cy, cz):
  """Rotates (y, z) about (cy, cz) by `angle` (towards -z for angle > 0)."""
  dy, dz = y - cy, z - cz
  c, s = jnp.cos(angle), jnp.sin(angle)
  return cy + c * dy + s * dz, cz - s * dy + c * dz


def _profile_rotations(uv, xy, z, params, feats):
  """Chin prognathism as a rotation of the lower profile.

  The lower face turns about a pivot behind the cheeks by an angle
  proportional to the chin projection, with a smooth weight from the nose
  base down; the second-order terms make identity act nonlinearly.
  """
  p = physical(params)
  v = uv[..., 1]
  x, y = xy[..., 0], xy[..., 1]
  w_low = jnp.clip((tpl.V_NOSE_BASE - v) / 0.66, 0.0, 1.0)
  w_low = w_low * w_low * (3.0 - 2.0 * w_low)
  beta = -0.02 * (p["chin_projection"] - _PHYSICAL["chin_projection"][0]) * (
      w_low)
  y, z = _rotate_yz(y, z, beta, feats[33, 1], -80.0)
  return jnp.stack([x, y, z], axis=-1)


def neutral(params: jax.Array, template: tpl.Template) -> jax.Array:
  """The subject's neutral face on a template, [V, 3] mm."""
  return surface(template.uv, params, cavity=template.cavity)
