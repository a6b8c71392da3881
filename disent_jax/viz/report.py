"""The run report: `report.md` plus a flat `metrics.json` in the workdir.

`write_report` takes nested metric dicts (e.g. {"E_rec": {"mean": ...}}),
flattens them to "E_rec/mean" names, writes the numeric ones to
`metrics.json` (non-finite values as null) and renders `report.md`: title,
notes, one metrics table per top-level group, text-valued entries (such as
the feature network behind a Fréchet distance) under "Details", and the
figures, linked relative to the workdir so the report renders wherever the
folder is copied.
"""

import json
import math
import numbers
import os
import pathlib
from typing import Any, Mapping, Sequence, Union

import numpy as np

_MAX_ARRAY = 32


def flatten_metrics(metrics: Mapping[str, Any], *, sep: str = "/"
                    ) -> tuple[dict[str, float], dict[str, str]]:
  """Splits nested metrics into flat numbers and flat text entries.

  Nested mappings join their keys with `sep`; numpy/JAX scalars become
  floats; arrays of at most 32 elements are expanded as name/0, name/1, ...;
  larger arrays and other objects are described in the text entries.

  Args:
    metrics: nested name -> value.
    sep: key separator.

  Returns:
    (numbers: flat name -> float, text: flat name -> str).
  """
  nums, text = {}, {}

  def visit(prefix, value):
    if isinstance(value, Mapping):
      for k, v in value.items():
        visit(f"{prefix}{sep}{k}" if prefix else str(k), v)
      return
    if isinstance(value, str):
      text[prefix] = value
      return
    if isinstance(value, (bool, numbers.Number)):
      nums[prefix] = float(value)
      return
    try:
      arr = np.asarray(value)
    except Exception:  # pylint: disable=broad-except
      text[prefix] = repr(value)
      return
    if arr.dtype.kind in "biuf":
      if arr.size == 1:
        nums[prefix] = float(arr.reshape(()))
      elif arr.size <= _MAX_ARRAY:
        for i, x in enumerate(arr.reshape(-1)):
          nums[f"{prefix}{sep}{i}"] = float(x)
      else:
        text[prefix] = f"array of shape {arr.shape} (not listed)"
    else:
      text[prefix] = str(value)

  visit("", metrics)
  return nums, text


def _fmt(x: float) -> str:
  if not math.isfinite(x):
    return str(x)
  return f"{x:.4g}" if abs(x) < 1e5 else f"{x:.4e}"


def write_report(workdir: str, metrics: Mapping[str, Any],
                 figures: Mapping[str, str], *, title: str,
                 notes: Union[str, Sequence[str], None] = None,
                 sep: str = "/") -> tuple[str, str]:
  """Writes `report.md` and `metrics.json` into `workdir`.

  Args:
    workdir: the run folder (created if missing).
    metrics: nested or flat name -> value (numbers, arrays, text).
    figures: caption -> PNG path (absolute or relative to `workdir`), in
      display order.
    title: report title.
    notes: a paragraph or a list of bullet points shown under the title
      (e.g. the dataset, the checkpoint step, the feature network used for
      Fréchet distances).
    sep: separator of flattened names.

  Returns:
    (path of report.md, path of metrics.json).
  """
  root = pathlib.Path(workdir)
  root.mkdir(parents=True, exist_ok=True)
  nums, text = flatten_metrics(metrics, sep=sep)
  metrics_path = root / "metrics.json"
  metrics_path.write_text(json.dumps(
      {k: (v if math.isfinite(v) else None) for k, v in nums.items()},
      indent=2, sort_keys=True) + "\n")

  lines = [f"# {title}", ""]
  if notes:
    if isinstance(notes, str):
      lines += [notes, ""]
    else:
      lines += [f"- {n}" for n in notes] + [""]
  groups: dict[str, list[tuple[str, float]]] = {}
  for name, value in nums.items():
    head, _, rest = name.partition(sep)
    groups.setdefault(head if rest else "", []).append((rest or head, value))
  if nums:
    lines += ["## Metrics", ""]
  for group in sorted(groups):
    if group:
      lines += [f"### {group}", ""]
    lines += ["| metric | value |", "|---|---:|"]
    lines += [f"| {n} | {_fmt(v)} |" for n, v in groups[group]]
    lines.append("")
  if text:
    lines += ["## Details", ""]
    lines += [f"- **{k}**: {v}" for k, v in text.items()]
    lines.append("")
  if figures:
    lines += ["## Figures", ""]
  for caption, fig in figures.items():
    p = pathlib.Path(fig)
    if p.is_absolute():
      try:
        p = p.resolve().relative_to(root.resolve())
      except ValueError:
        p = pathlib.Path(os.path.relpath(p, root))
    lines += [f"### {caption}", "", f"![{caption}]({p.as_posix()})", ""]
  report_path = root / "report.md"
  report_path.write_text("\n".join(lines))
  return str(report_path), str(metrics_path)
