"""Image grids with row and column labels, written to PNG.

Images are float arrays in [0, 1] (or uint8) shaped [H, W, 3] or [H, W]
(greyscale). A grid is a nested [R, C, H, W(, 3)] array or a list of rows;
`None` leaves a cell blank.

Figures are drawn on `matplotlib.figure.Figure` objects with an Agg canvas,
without pyplot, so importing these modules never changes the matplotlib
backend of a notebook or a GUI session.
"""

import os
from typing import Optional, Sequence

from matplotlib import figure as mpl_figure
from matplotlib import image as mpl_image
from matplotlib.backends import backend_agg
import numpy as np


def new_figure(figsize: tuple[float, float]) -> mpl_figure.Figure:
  """A pyplot-free figure with an Agg canvas (no global state)."""
  fig = mpl_figure.Figure(figsize=figsize)
  backend_agg.FigureCanvasAgg(fig)
  return fig


def save_figure(fig: mpl_figure.Figure, path: str, *, dpi: int = 100) -> str:
  """Writes `fig` as PNG (creating folders); returns `path`."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=dpi)
  return path


def to_rgb(image) -> np.ndarray:
  """Float [H, W, 3] in [0, 1] from uint8 or float, greyscale or RGB(A)."""
  x = np.asarray(image)
  if x.dtype == np.uint8:
    x = x.astype(np.float32) / 255.0
  x = np.asarray(x, np.float32)
  if x.ndim == 3 and x.shape[-1] == 1:
    x = x[..., 0]
  if x.ndim == 2:
    x = np.repeat(x[..., None], 3, axis=-1)
  if x.ndim != 3 or x.shape[-1] not in (3, 4):
    raise ValueError(f"image must be [H, W], [H, W, 1|3|4], got {x.shape}.")
  return np.clip(np.nan_to_num(x[..., :3]), 0.0, 1.0)


def tile(images, *, pad: int = 2, pad_value: float = 1.0) -> np.ndarray:
  """Tiles [R, C, H, W, 3] images into one [R*H + pads, C*W + pads, 3].

  Args:
    images: [R, C, H, W(, 3)] array or nested lists of equal-size images.
    pad: pixels between cells.
    pad_value: colour of the padding (grey level in [0, 1]).

  Returns:
    The tiled float image.
  """
  rows = [[to_rgb(im) for im in row] for row in images]
  h, w, _ = rows[0][0].shape
  nr, nc = len(rows), max(len(r) for r in rows)
  out = np.full((nr * h + (nr - 1) * pad, nc * w + (nc - 1) * pad, 3),
                pad_value, np.float32)
  for i, row in enumerate(rows):
    for j, im in enumerate(row):
      if im.shape[:2] != (h, w):
        raise ValueError(f"cell ({i}, {j}) is {im.shape}, expected {h}x{w}.")
      out[i * (h + pad):i * (h + pad) + h, j * (w + pad):j * (w + pad) + w] = im
  return out


def save_image(path: str, image) -> str:
  """Writes one image as PNG; returns `path`."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  mpl_image.imsave(path, to_rgb(image))
  return path


def image_grid(path: str, images, *,
               row_labels: Optional[Sequence[str]] = None,
               col_labels: Optional[Sequence[str]] = None,
               title: Optional[str] = None, cell_inches: float = 1.3,
               dpi: int = 100) -> str:
  """Saves a labelled grid of images as PNG.

  Args:
    path: output .png path (folders are created).
    images: [R, C, H, W(, 3)] array or a list of R rows of C images; a cell
      may be None (left blank).
    row_labels: R labels drawn left of the rows.
    col_labels: C labels drawn above the columns.
    title: figure title.
    cell_inches: size of one cell in inches.
    dpi: output resolution.

  Returns:
    `path`.
  """
  rows = [list(r) for r in images]
  nr, nc = len(rows), max(len(r) for r in rows)
  if nr == 0 or nc == 0:
    raise ValueError("image_grid needs at least one image.")
  if row_labels is not None and len(row_labels) != nr:
    raise ValueError(f"{len(row_labels)} row labels for {nr} rows.")
  if col_labels is not None and len(col_labels) != nc:
    raise ValueError(f"{len(col_labels)} column labels for {nc} columns.")
  extra_w = 0.6 if row_labels is not None else 0.0
  extra_h = (0.35 if col_labels is not None else 0.0) + (
      0.4 if title else 0.0)
  fig = new_figure((nc * cell_inches + extra_w, nr * cell_inches + extra_h))
  axes = fig.subplots(nr, nc, squeeze=False)
  for i in range(nr):
    for j in range(nc):
      ax = axes[i, j]
      ax.set_xticks([])
      ax.set_yticks([])
      for spine in ax.spines.values():
        spine.set_visible(False)
      cell = rows[i][j] if j < len(rows[i]) else None
      if cell is not None:
        ax.imshow(to_rgb(cell), interpolation="nearest")
      if col_labels is not None and i == 0:
        ax.set_title(str(col_labels[j]), fontsize=9)
      if row_labels is not None and j == 0:
        ax.set_ylabel(str(row_labels[i]), fontsize=9, rotation=0,
                      ha="right", va="center")
  if title:
    fig.suptitle(title, fontsize=11)
  fig.tight_layout(pad=0.3)
  return save_figure(fig, path, dpi=dpi)
