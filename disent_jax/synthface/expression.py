"""SynthFace expressions: blendable deformations relative to the subject.

An expression is a weight vector over `EXPRESSIONS` (the 12 CoMA expressions
plus symmetric and asymmetric extras). Weights map linearly to activations of
`PRIMITIVES` (clipped to their valid range), and each primitive is a
deformation placed from the subject's own features:

- sliding primitives (eyelids, brows) move vertices in the template domain and
  put them back on the subject's neutral surface, so lids close over the
  subject's eyeballs and brows slide over the subject's brow ridge;
- displacement primitives (smile, frown, lip raise, pucker, cheeks, ...) are
  smooth fields centred on the subject's mouth corners, lips and cheeks, with
  magnitudes proportional to the subject's mouth width and lip heights;
- the jaw rotates the lower face about the subject's jaw pivot.

The deformation is therefore not additive in identity and expression. "Left"
and "right" refer to the image (model -x and +x). Zero weights return the
neutral face bit for bit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from disent_jax.synthface import identity as idn
from disent_jax.synthface import template as tpl

PRIMITIVES = (
    "jaw_open", "smile_left", "smile_right", "frown_left", "frown_right",
    "stretch", "upper_lip_raise", "lower_lip_depress", "pucker",
    "cheek_suck", "cheek_puff", "brow_raise_left", "brow_raise_right",
    "brow_lower", "eye_close_left", "eye_close_right", "cheek_raise",
    "jaw_side", "mouth_up", "mouth_down",
)
NUM_PRIMITIVES = len(PRIMITIVES)

COMA_EXPRESSIONS = (
    "bareteeth", "cheeks_in", "eyebrow", "high_smile", "lips_back", "lips_up",
    "mouth_down", "mouth_extreme", "mouth_middle", "mouth_open", "mouth_side",
    "mouth_up",
)

_RECIPES = {
    "bareteeth": {"upper_lip_raise": 0.9, "lower_lip_depress": 0.8,
                  "stretch": 0.6, "jaw_open": 0.12},
    "cheeks_in": {"cheek_suck": 1.0, "pucker": 0.5},
    "eyebrow": {"brow_raise_left": 1.0, "brow_raise_right": 1.0},
    "high_smile": {"smile_left": 1.0, "smile_right": 1.0, "cheek_raise": 1.0,
                   "upper_lip_raise": 0.35, "jaw_open": 0.08},
    "lips_back": {"stretch": 1.0, "smile_left": 0.15, "smile_right": 0.15},
    "lips_up": {"upper_lip_raise": 0.5, "mouth_up": 1.0, "pucker": 0.3},
    "mouth_down": {"frown_left": 1.0, "frown_right": 1.0, "mouth_down": 0.6,
                   "lower_lip_depress": 0.3},
    "mouth_extreme": {"jaw_open": 1.0, "stretch": 0.4,
                      "upper_lip_raise": 0.3},
    "mouth_middle": {"pucker": 1.0},
    "mouth_open": {"jaw_open": 0.55},
    "mouth_side": {"jaw_side": 1.0, "smile_right": 0.3},
    "mouth_up": {"mouth_up": 1.0, "pucker": 0.2},
    "smile": {"smile_left": 0.8, "smile_right": 0.8},
    "smile_left": {"smile_left": 1.0},
    "smile_right": {"smile_right": 1.0},
    "blink": {"eye_close_left": 1.0, "eye_close_right": 1.0},
    "wink_left": {"eye_close_left": 1.0, "cheek_raise": 0.2},
    "wink_right": {"eye_close_right": 1.0, "cheek_raise": 0.2},
    "frown": {"brow_lower": 1.0, "frown_left": 0.3, "frown_right": 0.3},
    "brow_raise_left": {"brow_raise_left": 1.0},
    "cheek_puff": {"cheek_puff": 1.0, "pucker": 0.2},
    "surprise": {"brow_raise_left": 1.0, "brow_raise_right": 1.0,
                 "jaw_open": 0.4},
}
EXPRESSIONS = tuple(_RECIPES)
NUM_EXPRESSIONS = len(EXPRESSIONS)
ASYMMETRIC_EXPRESSIONS = ("mouth_side", "smile_left", "smile_right",
                          "wink_left", "wink_right", "brow_raise_left")

MIXING = np.zeros((NUM_EXPRESSIONS, NUM_PRIMITIVES), np.float32)
for _i, _name in enumerate(EXPRESSIONS):
  for _prim, _w in _RECIPES[_name].items():
    MIXING[_i, PRIMITIVES.index(_prim)] = _w
_LOWER = np.array([-1.0 if p == "jaw_side" else 0.0 for p in PRIMITIVES],
                  np.float32)

_MOUTH_GROUP = np.array(
    [p in ("smile_left", "smile_right", "frown_left", "frown_right",
           "stretch", "upper_lip_raise", "lower_lip_depress", "pucker",
           "cheek_suck", "cheek_puff", "cheek_raise", "jaw_side", "mouth_up",
           "mouth_down") for p in PRIMITIVES], np.float32)
MOUTH_BUDGET = 3.5

JAW_MAX_ANGLE = 0.4   # rad
JAW_GLIDE = 18.0      # mm forward slide of the jaw at full opening
EYE_CLOSED_GAP = 0.15  # fraction of the lid gap left at full closure

_HIGHEST = jax.lax.Precision.HIGHEST


def one_hot(name: str, weight: float = 1.0) -> np.ndarray:
  """Expression weights [NUM_EXPRESSIONS] of one named expression."""
  w = np.zeros(NUM_EXPRESSIONS, np.float32)
  w[EXPRESSIONS.index(name)] = weight
  return w


def activations(weights: jax.Array) -> jax.Array:
  """Primitive activations [..., NUM_PRIMITIVES] of weights [..., K]."""
  weights = jnp.asarray(weights, jnp.float32)
  if weights.shape[-1] != NUM_EXPRESSIONS:
    raise ValueError(f"expression weights must end in {NUM_EXPRESSIONS}, got "
                     f"{weights.shape}")
  a = jnp.clip(jnp.matmul(weights, MIXING, precision=_HIGHEST), _LOWER, 1.0)
  # Mouth and cheek primitives share a budget so that any blend stays a
  # valid mesh; single expressions are within it.
  total = jnp.sum(jnp.abs(a) * _MOUTH_GROUP, axis=-1, keepdims=True)
  scale = jnp.minimum(1.0, MOUTH_BUDGET / jnp.maximum(total, 1e-6))
  return a * jnp.where(_MOUTH_GROUP > 0, scale, 1.0)


def _smoothstep(t):
  t = np.clip(t, 0.0, 1.0)
  return t * t * (3.0 - 2.0 * t)


def jaw_weight(template: tpl.Template) -> np.ndarray:
  """Per-vertex weight [V] of the jaw motion (numpy, template only).

  A smooth field, 1 on the lower face and 0 above the mouth (a transition
  across the mouth line that widens towards the cheeks), plus a jump across
  the mouth cut that is full in the middle and tapers to zero at the mouth
  corners: the lips part like a lens, the corners stretch smoothly.
  """
  u, v = template.uv[:, 0].astype(np.float64), template.uv[:, 1]
  au = np.abs(u)
  d = v - tpl.V_MOUTH
  d = np.where(np.abs(d) < 1e-6, 0.0, d)
  sigma = 0.035 + 0.2 * _smoothstep((au - 0.3) / 0.5)
  w0 = 1.0 / (1.0 + np.exp(np.clip(d / sigma, -60.0, 60.0)))
  jump = np.clip(1.0 - (au / tpl.U_SLIT_END)**6, 0.0, 1.0)
  lower = (d < 0) | template.lower_copy
  w = (1.0 - jump) * w0 + np.where(lower, jump, 0.0)
  cav = np.clip((tpl.V_MOUTH + 0.02 - v) / 0.2, 0.0, 1.0)
  w = np.where(template.cavity, cav, w)
  return w.astype(np.float32)


def _slide(uv: jax.Array, a: jax.Array) -> jax.Array:
  """Template-domain displacement [V, 2] of the sliding primitives."""
  u, v = uv[:, 0], uv[:, 1]
  au = jnp.abs(u)
  dv = jnp.zeros_like(v)
  du = jnp.zeros_like(u)
  # Eyelids: the upper lid slides down over the eyeball.
  for name, sign in (("eye_close_left", -1.0), ("eye_close_right", 1.0)):
    act = a[PRIMITIVES.index(name)]
    xi = (u - sign * tpl.U_EYE) / tpl.EYE_HALF_WIDTH
    prof = jnp.maximum(1.0 - xi * xi, 0.0)
    up = tpl.EYE_UPPER * prof**0.8
    lo = -tpl.EYE_LOWER * prof**0.9
    gap = up - lo
    vl = v - tpl.V_EYE
    close = act * (1.0 - EYE_CLOSED_GAP)
    inside = -(vl - lo) * close
    above = -close * gap * jnp.exp(-0.5 * ((vl - up) / 0.12)**2)
    dv = dv + jnp.where(vl < lo, 0.0, jnp.where(vl <= up, inside, above))
  # Brows: raise (per side) and lower (both, drawn together).
  below = jnp.clip((v - (tpl.V_EYE + 0.07)) / (tpl.V_BROW - tpl.V_EYE - 0.07),
                   0.0, 1.0)
  below = below * below * (3.0 - 2.0 * below)
  above = jnp.maximum(
      1.0 - ((v - tpl.V_BROW) / (1.0 - tpl.V_BROW))**2, 0.0)
  vert = jnp.where(v < tpl.V_BROW, below, above)
  horiz = jnp.exp(-0.5 * ((au - 0.48) / 0.32)**4)
  for name, sign in (("brow_raise_left", -1.0), ("brow_raise_right", 1.0)):
    side = 0.5 * (1.0 + jnp.tanh(sign * u / 0.08))
    dv = dv + a[PRIMITIVES.index(name)] * 0.07 * vert * horiz * side
  lower = a[PRIMITIVES.index("brow_lower")]
  dv = dv - lower * 0.025 * vert * horiz
  du = du - lower * 0.03 * jnp.tanh(u / 0.06) * vert * jnp.exp(
      -0.5 * ((au - 0.25) / 0.18)**2)
  return jnp.stack([du, dv], axis=-1)


def apply_expression(neutral: jax.Array, params: jax.Array,
                     weights: jax.Array,
                     template: tpl.Template) -> jax.Array:
  """Deforms a subject's neutral face by an expression.

  Args:
    neutral: [V, 3] the subject's neutral vertices (`identity.neutral`).
    params: [NUM_IDENTITY] identity parameters of the subject.
    weights: [NUM_EXPRESSIONS] expression weights (0 = neutral, 1 = apex).
    template: the template the vertices live on.

  Returns:
    [V, 3] expressive vertices in mm; exactly `neutral` when all weights are
    zero.
  """
  neutral = jnp.asarray(neutral, jnp.float32)
  nv = template.num_vertices
  if neutral.shape != (nv, 3):
    raise ValueError(f"neutral must have shape ({nv}, 3), got "
                     f"{neutral.shape}")
  a = activations(weights)
  act = lambda name: a[PRIMITIVES.index(name)]
  p = idn.physical(params)
  uv = jnp.asarray(template.uv)
  cavity = jnp.asarray(template.cavity)
  # Sliding primitives: back onto the neutral surface.
  duv = _slide(uv, a)
  moved = jnp.any(duv != 0.0, axis=-1)
  slid = idn.surface(uv + duv, params, cavity=cavity)
  verts = jnp.where(moved[:, None], slid, neutral)
  # Displacement primitives, relative to the subject's mouth and cheeks.
  lm = template.landmarks
  c_left, c_right = neutral[lm[48]], neutral[lm[54]]
  mw = 0.5 * (c_right[0] - c_left[0])
  centre = 0.5 * (c_left + c_right)
  ym = neutral[lm[62], 1]
  x, y = neutral[:, 0], neutral[:, 1]
  xr = x - centre[0]
  skin = 1.0 - cavity.astype(jnp.float32)
  disp = jnp.zeros_like(neutral)
  sig = 0.6 * mw
  for side, corner in ((-1.0, c_left), (1.0, c_right)):
    g = jnp.exp(-0.5 * jnp.sum((neutral - corner)**2, axis=-1) / sig**2)
    g = g * skin
    tag = "left" if side < 0 else "right"
    smile = act("smile_" + tag) * jnp.stack(
        [side * 0.22 * mw, 0.32 * mw, -0.12 * mw])
    frown = act("frown_" + tag) * jnp.stack(
        [side * 0.04 * mw, -0.26 * mw, -0.03 * mw])
    stretch = act("stretch") * jnp.stack(
        [side * 0.2 * mw, 0.02 * mw, -0.1 * mw])
    disp = disp + g[:, None] * (smile + frown + stretch)[None, :]
  prof = jnp.maximum(1.0 - (xr / mw)**2, 0.0)**1.5 * skin
  lip = jnp.maximum(1.0 - (xr / (1.15 * mw))**2, 0.0)**2 * jnp.exp(
      -0.5 * ((y - ym) / (0.5 * mw))**2) * skin
  disp = disp.at[:, 2].add(-act("stretch") * 0.6 * p["lip_projection"] * lip)
  ul, ll = p["upper_lip"], p["lower_lip"]
  upper = (jnp.asarray(template.lip_side) > 0) * prof * jnp.exp(
      -0.5 * ((y - ym) / (1.3 * ul))**2)
  lower = (jnp.asarray(template.lip_side) < 0) * prof * jnp.exp(
      -0.5 * ((y - ym) / (1.3 * ll))**2)
  disp = disp + (act("upper_lip_raise") * upper)[:, None] * jnp.stack(
      [0.0, 0.9 * ul, 0.15 * ul])
  disp = disp + (act("lower_lip_depress") * lower)[:, None] * jnp.stack(
      [0.0, -0.9 * ll, 0.1 * ll])
  pucker = jnp.exp(-0.5 * (xr / (1.1 * mw))**2 - 0.5 * (
      (y - ym) / (0.8 * mw))**2) * skin
  disp = disp + (act("pucker") * pucker)[:, None] * jnp.stack(
      [-0.3 * xr, jnp.zeros_like(xr), jnp.full_like(xr, 0.35 * mw)], -1)
  # Cheeks.
  ax = jnp.abs(x)
  sgn = jnp.where(x < 0, -1.0, 1.0)
  cheek_x = 0.52 * p["face_width"]
  g_suck = jnp.exp(-0.5 * (((ax - cheek_x) / 16.0)**2 + (
      (y - (ym + 10.0)) / 16.0)**2)) * skin
  g_puff = jnp.exp(-0.5 * (((ax - cheek_x) / 20.0)**2 + (
      (y - (ym + 5.0)) / 20.0)**2)) * skin
  ey = neutral[lm[36], 1]
  g_raise = jnp.exp(-0.5 * (((ax - 0.5 * p["face_width"]) / 18.0)**2 + (
      (y - (ey - 35.0)) / 16.0)**2)) * skin
  disp = disp.at[:, 2].add(-7.0 * act("cheek_suck") * g_suck
                           + 8.0 * act("cheek_puff") * g_puff
                           + 2.0 * act("cheek_raise") * g_raise)
  disp = disp.at[:, 0].add(4.0 * act("cheek_puff") * g_puff * sgn)
  disp = disp.at[:, 1].add(5.0 * act("cheek_raise") * g_raise)
  # Whole-mouth shifts.
  g_mouth = jnp.exp(-0.5 * (xr / (1.2 * mw))**2 - 0.5 * (
      (y - ym) / (0.9 * mw))**2) * skin
  disp = disp.at[:, 1].add(
      0.2 * mw * (act("mouth_up") - act("mouth_down")) * g_mouth)
  # The jaw slides sideways; the mouth corners stay anchored.
  jw_soft = jnp.asarray(jaw_weight(template))
  anchor = 1.0
  for corner in (c_left, c_right):
    anchor = anchor - jnp.exp(
        -0.5 * jnp.sum((neutral - corner)**2, axis=-1) / (0.5 * mw)**2)
  disp = disp.at[:, 0].add(
      act("jaw_side") * 0.3 * mw * jw_soft * jnp.maximum(anchor, 0.0))
  verts = verts + disp
  # Jaw rotation about the subject's pivot (x axis), with a forward glide.
  jw = jnp.asarray(jaw_weight(template))
  nose_base = neutral[lm[33]]
  pivot_y = nose_base[1] + 15.0
  pivot_z = nose_base[2] - 90.0
  theta = act("jaw_open") * JAW_MAX_ANGLE * jw
  cos_m1 = jnp.cos(theta) - 1.0
  sin = jnp.sin(theta)
  dy = verts[:, 1] - pivot_y
  dz = verts[:, 2] - pivot_z
  jaw = jnp.stack([
      jnp.zeros_like(dy), cos_m1 * dy - sin * dz,
      sin * dy + cos_m1 * dz + act("jaw_open") * JAW_GLIDE * jw], -1)
  return verts + jaw


# Sequence profile (CoMA-like captures): a near-neutral rest frame, a rise to
# the apex, a hold at the apex, a partial release. Every range is sampled once
# per sequence; the jitter once per frame. Levels are fractions of the
# sequence's apex level, times are fractions of the sequence.
SEQUENCE_APEX = (0.8, 1.0)        # apex level (expression weight)
SEQUENCE_REST = (0.03, 0.08)      # frame 0: never the exact neutral
SEQUENCE_RELEASE = (0.15, 0.35)   # last frame: back towards neutral, not to it
SEQUENCE_PEAK_TIME = (0.3, 0.55)  # first apex frame (snapped to a frame >= 1)
SEQUENCE_HOLD = (0.1, 0.3)        # length of the apex hold
SEQUENCE_JITTER = 0.05            # per-frame multiplicative jitter, +-5 %


def _stream_uniform(key: jax.Array, stream: int,
                    bounds: tuple[float, float]) -> jax.Array:
  lo, hi = bounds
  return jax.random.uniform(jax.random.fold_in(key, stream), minval=lo,
                            maxval=hi)


def _ease(x: jax.Array) -> jax.Array:
  """sin^2 ease from 0 (x <= 0) to 1 (x >= 1), zero slope at both ends."""
  return jnp.sin(0.5 * jnp.pi * jnp.clip(x, 0.0, 1.0))**2


def sequence_apex_level(key: jax.Array) -> jax.Array:
  """The apex level of a sequence, a scalar in `SEQUENCE_APEX`.

  Args:
    key: the sequence's PRNG key (the same one `sequence_profile` takes).

  Returns:
    [] float32, the expression weight at the apex before per-frame jitter.
  """
  return _stream_uniform(key, 0, SEQUENCE_APEX)


def sequence_min_gap(num_frames: int) -> float:
  """The smallest intensity gap between two frames of one sequence.

  0.01 of the apex for sequences of up to 25 frames, 0.25 / num_frames for
  longer ones (so the gaps never span more than a quarter of the range).
  """
  return min(0.01, 0.25 / max(int(num_frames), 1))


def _separate(values: jax.Array, gap: float) -> jax.Array:
  """Raises values [F] as little as needed to be `gap` apart, in rank order."""
  order = jnp.argsort(values)
  ranks = jnp.arange(values.shape[0], dtype=jnp.float32) * gap
  raised = jax.lax.cummax(values[order] - ranks) + ranks
  return jnp.zeros_like(values).at[order].set(raised)


def sequence_profile(key: jax.Array, frames: jax.Array,
                     num_frames: int) -> jax.Array:
  """Per-frame intensity of a sequence, relative to its apex level.

  Neutral -> apex -> neutral like a CoMA capture, but neither symmetric nor
  exactly neutral: frame 0 rests at `SEQUENCE_REST` of the apex, the rise
  (sin^2 ease) reaches the apex at a frame `SEQUENCE_PEAK_TIME` into the
  sequence, the apex is held for `SEQUENCE_HOLD` of it, and the release
  (sin^2 ease) ends at `SEQUENCE_RELEASE` of the apex. Every frame is
  multiplied by its own jitter in [1 - J, 1 + J] (J = `SEQUENCE_JITTER`);
  then the frames are pulled apart, in rank order, to differ by at least
  `sequence_min_gap(num_frames)`, and the whole profile is scaled to peak at
  most at 1. So no two frames of a sequence share an intensity, and frame f
  and frame num_frames-1-f differ. A one-frame sequence is its apex.
  Deterministic in (key, num_frames), jit- and vmap-able.

  Args:
    key: the sequence's PRNG key.
    frames: int array of any shape, frame indices in [0, num_frames).
    num_frames: frames in the sequence (static, >= 1).

  Returns:
    float32 array of the shape of `frames`, values in (0, 1].
  """
  if num_frames < 1:
    raise ValueError(f"num_frames must be >= 1, got {num_frames}")
  frames = jnp.asarray(frames, jnp.int32)
  all_frames = jnp.arange(num_frames)
  if num_frames == 1:
    base = jnp.ones((1,), jnp.float32)
  else:
    last = num_frames - 1
    t = all_frames.astype(jnp.float32) / last
    peak = jnp.clip(jnp.round(_stream_uniform(key, 1, SEQUENCE_PEAK_TIME)
                              * last), 1, last) / last
    release_start = jnp.minimum(
        peak + _stream_uniform(key, 2, SEQUENCE_HOLD), 1.0)
    rest = _stream_uniform(key, 3, SEQUENCE_REST)
    release = _stream_uniform(key, 4, SEQUENCE_RELEASE)
    rise = rest + (1.0 - rest) * _ease(t / peak)
    fall = release + (1.0 - release) * _ease(
        (1.0 - t) / jnp.maximum(1.0 - release_start, 1e-6))
    base = jnp.where(t <= peak, rise,
                     jnp.where(t <= release_start, 1.0, fall))
  jitter_key = jax.random.fold_in(key, 5)
  jitter = jax.vmap(lambda f: jax.random.uniform(
      jax.random.fold_in(jitter_key, f), minval=-1.0, maxval=1.0))(all_frames)
  profile = _separate(base * (1.0 + SEQUENCE_JITTER * jitter),
                      sequence_min_gap(num_frames))
  profile = profile / jnp.maximum(jnp.max(profile), 1.0)
  return jnp.take(profile, frames)


def sequence_weights(apex: jax.Array, num_frames: int,
                     key: jax.Array) -> jax.Array:
  """Neutral -> apex -> neutral weights [num_frames, K] of one sequence.

  `apex` scaled by `sequence_profile(key, arange(num_frames), num_frames)`:
  the profile the `synthface_meshes` sequences use (there the apex is
  `sequence_apex_level(key)` times a one-hot expression).

  Args:
    apex: [K] expression weights at the apex.
    num_frames: frames in the sequence (static, >= 1).
    key: the sequence's PRNG key.

  Returns:
    [num_frames, K] float32 weights; no frame is all zeros unless `apex` is.
  """
  apex = jnp.asarray(apex, jnp.float32)
  profile = sequence_profile(key, jnp.arange(num_frames), num_frames)
  return profile[:, None] * apex[None, :]
