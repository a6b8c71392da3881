"""SynthFace template topology: a triangulated face domain with a mouth cut.

The template lives in a normalised 2D face domain (u, v): u in [-1, 1] to the
subject's left on the image right (model +x), v in [-1, 1] upwards (model +y);
the outline is the unit disk. Identity (`identity.py`) maps (u, v) to
millimetres. The triangulation is left-right symmetric (`mirror`), denser
around the eyes and the mouth, and cut along the mouth line: the vertices of
the inner lip line are duplicated, so the upper and lower lips coincide at rest
(a watertight neutral face) but can part. A small separate patch behind the
lips (the oral cavity, with teeth) is visible when the mouth opens.

All arrays are numpy; `template(resolution)` is cached.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from scipy import spatial

# Named feature positions in the template domain (u, v).
V_CHIN = -1.0
V_MOUTH = -0.56
V_NOSE_BASE = -0.34
V_EYE = 0.2
V_BROW = 0.37
V_TOP = 1.0
U_EYE = 0.45
EYE_HALF_WIDTH = 0.21
EYE_UPPER = 0.06
EYE_LOWER = 0.045
U_MOUTH_CORNER = 0.36
U_SLIT_END = 0.32
SLIT_SPACING = 0.04
UPPER_LIP = 0.09
LOWER_LIP = 0.115

REGION_NAMES = ("forehead", "brows", "eyes", "nose", "cheeks", "mouth", "chin",
                "jaw", "mouth_interior")

# Radial density compensation: template radius rho_uv = sin(g rho_s)/sin(g),
# so vertices crowd towards the outline where the surface turns away.
_GAMMA = 1.1

RESOLUTIONS = {"1k": 1000, "2.5k": 2500, "5k": 5000}


def eye_lid_offsets(xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Upper and lower lid margins (v offsets) at eye-local xi in [-1, 1]."""
  prof = np.clip(1.0 - xi**2, 0.0, None)
  return EYE_UPPER * prof**0.8, -EYE_LOWER * prof**0.9


def _landmarks_uv() -> np.ndarray:
  """The 68 iBUG landmark positions in the template domain, [68, 2]."""
  pts = np.zeros((68, 2))
  # Jaw 0-16 on the outline, from the image-left temple to the right.
  for k in range(17):
    a = np.deg2rad((8 - k) / 8.0 * 95.0)
    pts[k] = (-np.sin(a), -np.cos(a))
  # Brows 17-21 (image-left, outer to inner), 22-26 mirrored.
  brow = np.array([(-0.80, 0.33), (-0.66, 0.40), (-0.50, 0.43), (-0.34, 0.42),
                   (-0.18, 0.38)])
  pts[17:22] = brow
  pts[22:27] = brow[::-1] * (-1.0, 1.0)
  # Nose: bridge 27-30 (top to tip), nostril base 31-35 (left to right).
  pts[27:31] = [(0.0, 0.25), (0.0, 0.11), (0.0, -0.04), (0.0, -0.19)]
  pts[31:36] = [(-0.20, -0.30), (-0.10, -0.325), (0.0, -0.34), (0.10, -0.325),
                (0.20, -0.30)]
  # Eyes: 36-41 image-left eye from the outer corner, clockwise in the image;
  # 42-47 image-right eye from the inner corner.
  xi = np.array([-1.0, -1.0 / 3.0, 1.0 / 3.0, 1.0])
  up, lo = eye_lid_offsets(xi)
  cl = -U_EYE
  left = [(cl + xi[0] * EYE_HALF_WIDTH, V_EYE),
          (cl + xi[1] * EYE_HALF_WIDTH, V_EYE + up[1]),
          (cl + xi[2] * EYE_HALF_WIDTH, V_EYE + up[2]),
          (cl + xi[3] * EYE_HALF_WIDTH, V_EYE),
          (cl + xi[2] * EYE_HALF_WIDTH, V_EYE + lo[2]),
          (cl + xi[1] * EYE_HALF_WIDTH, V_EYE + lo[1])]
  pts[36:42] = left
  right = np.array(left) * (-1.0, 1.0)
  # Mirror of (outer, up1, up2, inner, lo2, lo1) is, for the right eye,
  # (inner, up2', up1', outer, lo1', lo2') in iBUG order.
  pts[42:48] = right[[3, 2, 1, 0, 5, 4]]
  # Outer lips 48-59, inner lips 60-67.
  m = V_MOUTH
  pts[48:60] = [(-U_MOUTH_CORNER, m), (-0.24, m + 0.075), (-0.09, m + 0.1),
                (0.0, m + 0.085), (0.09, m + 0.1), (0.24, m + 0.075),
                (U_MOUTH_CORNER, m), (0.24, m - 0.08), (0.1, m - 0.11),
                (0.0, m - LOWER_LIP), (-0.1, m - 0.11), (-0.24, m - 0.08)]
  pts[60:68] = [(-U_SLIT_END, m), (-0.12, m), (0.0, m), (0.12, m),
                (U_SLIT_END, m), (0.12, m), (0.0, m), (-0.12, m)]
  return pts


LANDMARKS_UV = _landmarks_uv()
# Inner lower-lip landmarks sit on the lower copy of the cut.
_LOWER_LIP_LANDMARKS = (65, 66, 67)


def uv_to_s(uv: np.ndarray) -> np.ndarray:
  """Inverse radial density map: template (u, v) -> sampling domain s."""
  r = np.linalg.norm(uv, axis=-1, keepdims=True)
  rs = np.arcsin(np.clip(r * np.sin(_GAMMA), 0, 1)) / _GAMMA
  return uv * np.where(r > 0, rs / np.maximum(r, 1e-12), 1.0 / np.sin(_GAMMA)
                       * _GAMMA)


def s_to_uv(s: np.ndarray) -> np.ndarray:
  """Radial density map: sampling domain s -> template (u, v)."""
  r = np.linalg.norm(s, axis=-1, keepdims=True)
  ru = np.sin(_GAMMA * r) / np.sin(_GAMMA)
  return s * np.where(r > 0, ru / np.maximum(r, 1e-12),
                      _GAMMA / np.sin(_GAMMA))


def _sizing(uv: np.ndarray) -> np.ndarray:
  """Relative edge length at template points, [N] in (0, 1]."""
  u, v = uv[..., 0], uv[..., 1]
  d_eye = np.hypot((np.abs(u) - U_EYE) / 1.3, v - V_EYE)
  du_m = np.clip(np.abs(u) - U_MOUTH_CORNER, 0, None)
  d_mouth = np.hypot(du_m, (v - V_MOUTH) * 1.2)
  d_nose = np.hypot(u * 1.5, np.clip(np.abs(v + 0.1) - 0.2, 0, None))
  f = (1.0 - 0.5 * np.exp(-0.5 * (d_eye / 0.16)**2)
       - 0.45 * np.exp(-0.5 * (d_mouth / 0.12)**2)
       - 0.25 * np.exp(-0.5 * (d_nose / 0.12)**2))
  return np.clip(f, 0.4, 1.0)


def _walk(a: float, b: float, fixed: list[float], step_fn) -> list[float]:
  """Parameters in [a, b] through `fixed`, spaced about `step_fn(t)`."""
  anchors = sorted(set([a, b] + [f for f in fixed if a <= f <= b]))
  out = []
  for lo, hi in zip(anchors[:-1], anchors[1:]):
    h = step_fn(0.5 * (lo + hi))
    n = max(int(np.round((hi - lo) / h)), 1)
    out.extend(list(lo + (hi - lo) * np.arange(n) / n))
  out.append(anchors[-1])
  return out


def _slit_spacing(r0: float) -> float:
  return SLIT_SPACING if r0 > 0.05 else 0.5 * SLIT_SPACING


def _half_points(r0: float, seed: int = 0):
  """Points of the right half (u >= 0) of the domain in s coordinates.

  Returns:
    (s [N, 2], kind [N]) with kind 0 free, 1 fixed landmark/slit, 2 outline.
  """
  fixed = []
  kinds = []
  lm = LANDMARKS_UV[LANDMARKS_UV[:, 0] >= -1e-9]
  for p in lm:
    if not any(np.allclose(p, q) for q in fixed):
      fixed.append(p)
      kinds.append(1)
  # Slit points on the mouth line.
  spacing = _slit_spacing(r0)
  for u in np.arange(0.0, U_SLIT_END + 1e-9, spacing):
    p = np.array([u, V_MOUTH])
    if not any(np.allclose(p, q) for q in fixed):
      fixed.append(p)
      kinds.append(1)
  fixed_s = [uv_to_s(p[None])[0] for p in fixed]
  size = lambda uv: r0 * _sizing(np.asarray(uv)[None])[0]
  # Outline: a half circle from the chin (angle 0) over the right side.
  jaw_angles = [np.arctan2(p[0], -p[1]) for p in LANDMARKS_UV[8:17]]
  angles = _walk(0.0, np.pi, jaw_angles,
                 lambda a: size((np.sin(a), -np.cos(a))))
  outline = []
  for a in angles:
    p = np.array([np.sin(a), -np.cos(a)])
    if not any(np.allclose(p, q, atol=1e-7) for q in fixed_s):
      outline.append(p)
  # Midline: from the chin to the top through fixed midline points.
  mid_fixed = [q[1] for q in fixed_s if abs(q[0]) < 1e-9]
  mids = _walk(-1.0, 1.0, mid_fixed,
               lambda t: size(s_to_uv(np.array([[0.0, t]]))[0]))
  midline = []
  for t in mids[1:-1]:
    p = np.array([0.0, t])
    if not any(np.allclose(p, q, atol=1e-7) for q in fixed_s):
      midline.append(p)
  pts = fixed_s + outline + midline
  kinds = kinds + [2] * len(outline) + [1] * len(midline)
  pts = np.array(pts)
  radius = np.array([size(s_to_uv(p[None])[0]) for p in pts])
  on_line = np.abs(s_to_uv(pts)[:, 1] - V_MOUTH) < 1e-6
  radius[on_line] = np.maximum(radius[on_line], 1.0 * spacing / 0.9)
  # Poisson-disk elimination of random candidates with a variable radius.
  rng = np.random.default_rng(seed)
  n_cand = int(60.0 / r0**2)
  cand = rng.uniform([0.0, -1.0], [1.0, 1.0], size=(n_cand, 2))
  cand = cand[np.linalg.norm(cand, axis=1) < 1.0]
  cr = r0 * _sizing(s_to_uv(cand))
  cand = cand[(np.linalg.norm(cand, axis=1) < 1.0 - 0.5 * cr) &
              (cand[:, 0] > 0.5 * cr)]
  cr = r0 * _sizing(s_to_uv(cand))
  alive = np.ones(len(cand), bool)
  tree = spatial.cKDTree(cand)
  for p, r in zip(pts, radius):
    for j in tree.query_ball_point(p, 0.9 * r):
      alive[j] = False
  neigh = tree.query_ball_point(cand, 0.9 * cr)
  keep = []
  for i in range(len(cand)):
    if alive[i]:
      keep.append(i)
      for j in neigh[i]:
        alive[j] = False
  free = cand[keep]
  s = np.concatenate([pts, free])
  kind = np.concatenate([kinds, np.zeros(len(free), int)])
  return s, kind


@dataclasses.dataclass(frozen=True)
class Template:
  """A SynthFace template.

  Attributes:
    uv: [V, 2] template-domain coordinates.
    faces: [F, 3] int32 triangles, counter-clockwise in (u, v) (front +z).
    landmarks: [68] int32 vertex indices in iBUG-68 order.
    regions: [V] int32 indices into `REGION_NAMES`.
    mirror: [V] int32 index of the left-right mirror vertex.
    lip_side: [V] float32 +1 upper lip side, -1 lower side (below the mouth
      line or on the lower copy of the cut), 0 on the line beyond the cut.
    cavity: [V] bool, vertices of the oral-cavity patch.
    teeth: [V] float32 in [0, 1], teeth coverage of cavity vertices.
    lower_copy: [V] bool, the duplicated lower-lip vertices of the cut.
    boundary: [V] bool, outline vertices of the face surface.
    num_face_faces: number of faces of the face surface (the cavity patch
      follows).
    name: resolution name.
  """
  uv: np.ndarray
  faces: np.ndarray
  landmarks: np.ndarray
  regions: np.ndarray
  mirror: np.ndarray
  lip_side: np.ndarray
  cavity: np.ndarray
  teeth: np.ndarray
  lower_copy: np.ndarray
  boundary: np.ndarray
  num_face_faces: int
  name: str

  @property
  def num_vertices(self) -> int:
    return int(self.uv.shape[0])

  def region_mask(self, name: str) -> np.ndarray:
    """Boolean [V] mask of one semantic region."""
    return self.regions == REGION_NAMES.index(name)


def _triangulate_half(s: np.ndarray) -> np.ndarray:
  tri = spatial.Delaunay(s).simplices
  a, b, c = s[tri[:, 0]], s[tri[:, 1]], s[tri[:, 2]]
  area = 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1])
                - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))
  tri = tri[np.abs(area) > 1e-10]
  area = area[np.abs(area) > 1e-10]
  tri[area < 0] = tri[area < 0][:, [0, 2, 1]]
  return tri


def _regions(uv: np.ndarray) -> np.ndarray:
  u, v = np.abs(uv[:, 0]), uv[:, 1]
  reg = np.full(len(uv), REGION_NAMES.index("cheeks"))
  reg[v > 0.12] = REGION_NAMES.index("forehead")
  reg[(v < -0.25) & (u > 0.42)] = REGION_NAMES.index("jaw")
  reg[(v < V_MOUTH - LOWER_LIP) & (u <= 0.42)] = REGION_NAMES.index("chin")
  reg[(np.abs(v - (V_MOUTH - 0.01)) < 0.13) & (u < 0.42)] = (
      REGION_NAMES.index("mouth"))
  nose = (u < 0.14 + 0.12 * np.clip((0.25 - v) / 0.55, 0, 1)) & (
      v < 0.27) & (v > V_NOSE_BASE - 0.03)
  reg[nose] = REGION_NAMES.index("nose")
  brow_v = np.interp(u, LANDMARKS_UV[22:27, 0], LANDMARKS_UV[22:27, 1])
  reg[(np.abs(v - brow_v) < 0.05) & (u > 0.12) & (u < 0.86)] = (
      REGION_NAMES.index("brows"))
  xi = (u - U_EYE) / EYE_HALF_WIDTH
  eye = (np.abs(xi) < 1.15) & (np.abs(v - V_EYE) < 0.09)
  reg[eye] = REGION_NAMES.index("eyes")
  return reg


def _cavity_patch(step: float):
  """Grid behind the lips, [Vc, 2] (u, v) and [Fc, 3] faces, teeth [Vc]."""
  n_u = max(int(round(0.34 / step)), 2) * 2
  us = np.linspace(-U_SLIT_END - 0.02, U_SLIT_END + 0.02, n_u + 1)
  vs = np.linspace(V_MOUTH - 0.28, V_MOUTH + 0.06,
                   max(int(round(0.34 / step)), 4) + 1)
  gu, gv = np.meshgrid(us, vs)
  uv = np.stack([gu.ravel(), gv.ravel()], -1)
  nu = len(us)
  faces = []
  for i in range(len(vs) - 1):
    for j in range(nu - 1):
      a, b = i * nu + j, i * nu + j + 1
      c, d = a + nu, b + nu
      if j >= (nu - 1) // 2:
        faces += [(a, b, d), (a, d, c)]
      else:  # mirrored diagonal on the left half
        faces += [(a, b, c), (b, d, c)]
  teeth_up = np.exp(-0.5 * ((uv[:, 1] - (V_MOUTH + 0.01)) / 0.03)**2)
  teeth_lo = np.exp(-0.5 * ((uv[:, 1] - (V_MOUTH - 0.2)) / 0.025)**2)
  teeth = np.clip(teeth_up + teeth_lo, 0, 1) * np.exp(
      -0.5 * (uv[:, 0] / 0.26)**6)
  return uv, np.array(faces), teeth


def build_template(num_vertices: int, *, seed: int = 0,
                   name: str = "") -> Template:
  """Builds a template with about `num_vertices` vertices (numpy, ~1 s)."""
  if num_vertices < 300:
    raise ValueError(f"num_vertices must be >= 300, got {num_vertices}")
  target = 0.95 * num_vertices
  r0 = 2.3 / np.sqrt(num_vertices)
  for _ in range(4):
    s_half, kind = _half_points(r0, seed)
    n_est = 2 * len(s_half) - np.sum(np.abs(s_half[:, 0]) < 1e-9)
    if abs(n_est - target) < 0.02 * target:
      break
    r0 *= np.sqrt(n_est / target)
  tri_half = _triangulate_half(s_half)
  on_mid = np.abs(s_half[:, 0]) < 1e-9
  # Assemble the symmetric mesh: right half, then mirrored off-midline copies.
  n = len(s_half)
  off = np.flatnonzero(~on_mid)
  mirror_of = np.arange(n)
  mirror_of[off] = n + np.arange(len(off))
  s = np.concatenate([s_half, s_half[off] * (-1.0, 1.0)])
  kinds = np.concatenate([kind, kind[off]])
  faces = np.concatenate([tri_half, mirror_of[tri_half][:, [0, 2, 1]]])
  mirror = np.concatenate([mirror_of, off])
  uv = s_to_uv(s)
  uv[np.abs(uv[:, 0]) < 1e-12, 0] = 0.0
  # The mouth cut: duplicate the inner slit vertices for the lower lip.
  on_slit = (np.abs(uv[:, 1] - V_MOUTH) < 1e-9) & (
      np.abs(uv[:, 0]) < U_SLIT_END - 1e-6)
  slit = np.flatnonzero(on_slit)
  dup = len(uv) + np.arange(len(slit))
  dup_of = dict(zip(slit.tolist(), dup.tolist()))
  centroid_v = uv[faces].mean(axis=1)[:, 1]
  below = centroid_v < V_MOUTH
  new_faces = faces.copy()
  for fi in np.flatnonzero(below):
    for k in range(3):
      if faces[fi, k] in dup_of:
        new_faces[fi, k] = dup_of[faces[fi, k]]
  uv = np.concatenate([uv, uv[slit]])
  kinds = np.concatenate([kinds, kinds[slit]])
  mirror = np.concatenate([mirror, np.array(
      [dup_of[m] for m in mirror[slit]], dtype=int)])
  lower_copy = np.zeros(len(uv), bool)
  lower_copy[dup] = True
  num_face_vertices = len(uv)
  num_face_faces = len(new_faces)
  # Landmarks: nearest vertex (exact matches by construction).
  lm = np.zeros(68, np.int32)
  for k, p in enumerate(LANDMARKS_UV):
    d = np.linalg.norm(uv - p, axis=1)
    if k in _LOWER_LIP_LANDMARKS:
      d = np.where(lower_copy, d, np.inf)
    else:
      d = np.where(lower_copy, np.inf, d)
    lm[k] = int(np.argmin(d))
    if d[lm[k]] > 1e-6:
      raise AssertionError(f"landmark {k} not on a vertex")
  # Cavity patch.
  step = float(np.median(_edge_lengths(uv, new_faces)))
  cuv, cfaces, cteeth = _cavity_patch(step * 1.2)
  c0 = len(uv)
  cmirror = np.array([np.argmin(np.linalg.norm(
      cuv - p * (-1.0, 1.0), axis=1)) for p in cuv]) + c0
  uv = np.concatenate([uv, cuv])
  faces_all = np.concatenate([new_faces, cfaces + c0]).astype(np.int32)
  mirror = np.concatenate([mirror, cmirror])
  cavity = np.zeros(len(uv), bool)
  cavity[c0:] = True
  teeth = np.zeros(len(uv), np.float32)
  teeth[c0:] = cteeth
  lower_copy = np.concatenate([lower_copy, np.zeros(len(cuv), bool)])
  lip_side = np.where(uv[:, 1] > V_MOUTH + 1e-9, 1.0,
                      np.where(uv[:, 1] < V_MOUTH - 1e-9, -1.0, 0.0))
  on_line_cut = (np.abs(uv[:, 1] - V_MOUTH) < 1e-9) & (
      np.abs(uv[:, 0]) < U_SLIT_END - 1e-6) & ~cavity
  lip_side[on_line_cut] = 1.0
  lip_side[lower_copy] = -1.0
  lip_side[cavity] = 0.0
  regions = _regions(uv)
  regions[cavity] = REGION_NAMES.index("mouth_interior")
  boundary = np.zeros(len(uv), bool)
  boundary[:num_face_vertices] = kinds == 2
  boundary[lm[:17]] = True
  return Template(
      uv=uv.astype(np.float32), faces=faces_all, landmarks=lm,
      regions=regions.astype(np.int32), mirror=mirror.astype(np.int32),
      lip_side=lip_side.astype(np.float32), cavity=cavity,
      teeth=teeth, lower_copy=lower_copy, boundary=boundary,
      num_face_faces=num_face_faces, name=name)


def _edge_lengths(uv, faces):
  e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
  return np.linalg.norm(uv[e[:, 0]] - uv[e[:, 1]], axis=1)


@functools.lru_cache(maxsize=None)
def template(resolution: str = "1k") -> Template:
  """The cached template at a named resolution ("1k", "2.5k" or "5k")."""
  if resolution not in RESOLUTIONS:
    raise ValueError(
        f"resolution must be one of {sorted(RESOLUTIONS)}, got {resolution!r}")
  return build_template(RESOLUTIONS[resolution], name=resolution)
