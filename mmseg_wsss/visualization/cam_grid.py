# Copyright (c) OpenMMLab. All rights reserved.
"""One picture per image of what a WSSS method makes of it.

A grid of panels at the image's resolution (upscaled, nearest, for small
images): a first row with the image, the label maps (pseudo labels before
and after refinement, the prediction) and the ground truth; then one row
per heat map (the CAM, the aux CAM) with a panel per present class, the
map blended over the image. A legend names the colours of the classes.

Drawn with matplotlib's Agg canvas (no pyplot: no global state, safe in a
training process) at a layout fixed in pixels, so the size of a grid
follows from the panel size, the rows and the legend alone
(:func:`grid_size`).
"""
import math
from typing import List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

IGNORE_INDEX = 255
IGNORE_COLOUR = (255, 255, 255)
# Keys of 3-D (C-1, H, W) maps drawn as heat maps, one panel per class.
HEAT_KEYS = ('cam', 'aux_cam')
# Layout in pixels (at DPI 100 a font size of 9 is 12.5 pixels high).
DPI = 100
PAD = 8
TITLE_H = 20
HEADER_H = 26
LEGEND_ROW_H = 20
LEGEND_ENTRY_W = 150
FONT_SIZE = 9


class Panel(NamedTuple):
    """One panel of a grid: its title and (H, W, 3) uint8 RGB picture."""
    title: str
    image: np.ndarray


def colorize_label(label: np.ndarray,
                   palette: Sequence[Sequence[int]]) -> np.ndarray:
    """(H, W) class ids to (H, W, 3) uint8 colours (ignore: white)."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    colours = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)[:256]
    lut[:len(colours)] = colours
    lut[IGNORE_INDEX] = IGNORE_COLOUR
    return lut[np.clip(np.asarray(label), 0, 255).astype(np.int64)]


def overlay_heat(image_01: np.ndarray,
                 heat: np.ndarray,
                 alpha: float = 0.5) -> np.ndarray:
    """A [0, 1] (H, W) heat map in the jet colours over an (H, W, 3)
    [0, 1] image, as (H, W, 3) uint8."""
    from matplotlib import colormaps
    colour = colormaps['jet'](np.clip(heat, 0., 1.))[..., :3]
    mixed = (1. - alpha) * image_01 + alpha * colour
    return (np.clip(mixed, 0., 1.) * 255. + 0.5).astype(np.uint8)


def cam_grid_rows(
        image_01: np.ndarray,
        maps: Mapping[str, np.ndarray],
        class_names: Sequence[str],
        palette: Sequence[Sequence[int]],
        present_classes: Sequence[int],
        gt: Optional[np.ndarray] = None,
        titles: Optional[Mapping[str, str]] = None) -> List[List[Panel]]:
    """The panels of a grid, row by row (see :func:`draw_cam_grid`).

    Returns:
        list[list[Panel]]: The image, the label maps in the order of
        ``maps`` and the ground truth; then one row per heat map (keys in
        :data:`HEAT_KEYS`) with a panel per present class. Empty rows are
        left out.
    """
    titles = dict(titles or {})
    first = [Panel('image', _to_uint8(image_01))]
    heat_rows = []
    for key, value in maps.items():
        title = titles.get(key, key)
        if key in HEAT_KEYS:
            heat_rows.append([
                Panel(f'{title}: {class_names[c]}',
                      overlay_heat(image_01, value[c - 1]))
                for c in present_classes
            ])
        else:
            first.append(Panel(title, colorize_label(value, palette)))
    if gt is not None:
        first.append(Panel('ground truth', colorize_label(gt, palette)))
    return [first] + [row for row in heat_rows if row]


def legend_entries(maps: Mapping[str, np.ndarray],
                   present_classes: Sequence[int],
                   gt: Optional[np.ndarray] = None) -> List[int]:
    """Class ids a legend names: background, the present classes and every
    id of a label map or the ground truth (255: ignore), sorted."""
    ids = {0, *(int(c) for c in present_classes)}
    for key, value in maps.items():
        if key not in HEAT_KEYS:
            ids.update(int(i) for i in np.unique(value))
    if gt is not None:
        ids.update(int(i) for i in np.unique(gt))
    return sorted(ids)


def upscale_factor(height: int, width: int, min_size: int) -> int:
    """Integer (nearest) upscaling that brings the longer side of a panel
    to at least ``min_size`` pixels (1: large enough already)."""
    return max(1, math.ceil(min_size / max(height, width, 1)))


def grid_shape(rows: Sequence[Sequence[Panel]]) -> Tuple[int, int]:
    """(rows, columns) of the grid: the first row sets the columns (at
    least 3); longer heat-map rows wrap."""
    cols = max(len(rows[0]), 3)
    return sum(math.ceil(len(r) / cols) for r in rows), cols


def grid_size(panel_hw: Tuple[int, int],
              shape: Tuple[int, int],
              num_legend: int,
              header: bool = True) -> Tuple[int, int]:
    """(height, width) in pixels of a grid of ``shape`` (rows, columns) of
    ``panel_hw`` (upscaled) panels with ``num_legend`` legend entries."""
    (ph, pw), (nrows, ncols) = panel_hw, shape
    width = ncols * (pw + PAD) + PAD
    # One legend row more for the heat-map colour bar.
    per_row = max(1, (width - PAD) // LEGEND_ENTRY_W)
    legend_rows = math.ceil((num_legend + 1) / per_row)
    height = (HEADER_H if header else 0) + nrows * (TITLE_H + ph + PAD) + \
        PAD + legend_rows * LEGEND_ROW_H + PAD
    return height, width


def draw_cam_grid(image_01: np.ndarray,
                  maps: Mapping[str, np.ndarray],
                  class_names: Sequence[str],
                  palette: Sequence[Sequence[int]],
                  present_classes: Sequence[int],
                  gt: Optional[np.ndarray] = None,
                  titles: Optional[Mapping[str, str]] = None,
                  header: Optional[str] = None,
                  min_size: int = 192) -> np.ndarray:
    """Draw one image's grid of CAMs and label maps.

    Args:
        image_01 (np.ndarray): (H, W, 3) RGB image in [0, 1].
        maps (Mapping[str, np.ndarray]): One image's maps, drawn in this
            order: heat maps (keys in :data:`HEAT_KEYS`) (C-1, H, W) in
            [0, 1], channel ``k`` for class ``k + 1``; any other key an
            (H, W) label map (class ids, 255 ignore), e.g. the pseudo
            labels and the prediction.
        class_names (Sequence[str]): Names of the C classes, background
            first.
        palette (Sequence[Sequence[int]]): RGB colour per class id.
        present_classes (Sequence[int]): Foreground class ids (1-based) of
            the image (its image-level labels): one heat panel each.
        gt (np.ndarray, optional): (H, W) ground-truth mask; None: no
            panel.
        titles (Mapping[str, str], optional): Panel title per key of
            ``maps`` (default: the key).
        header (str, optional): A line above the grid.
        min_size (int): Panels are upscaled (nearest, integer factor) until
            their longer side has at least this many pixels. Defaults to
            192.

    Returns:
        np.ndarray: (h, w, 3) uint8 RGB picture of :func:`grid_size`.
    """
    rows = cam_grid_rows(image_01, maps, class_names, palette, present_classes,
                         gt, titles)
    legend = legend_entries(maps, present_classes, gt)
    return draw_grid(rows, legend, class_names, palette, header, min_size)


def draw_grid(rows: Sequence[Sequence[Panel]],
              legend: Sequence[int],
              class_names: Sequence[str],
              palette: Sequence[Sequence[int]],
              header: Optional[str] = None,
              min_size: int = 192) -> np.ndarray:
    """Draw panels (:func:`cam_grid_rows`) and a legend of class ids
    (:func:`legend_entries`) as in :func:`draw_cam_grid`.

    Returns:
        np.ndarray: (h, w, 3) uint8 RGB picture of :func:`grid_size`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    H, W = rows[0][0].image.shape[:2]
    scale = upscale_factor(H, W, min_size)
    ph, pw = H * scale, W * scale
    nrows, ncols = grid_shape(rows)
    has_header = header is not None
    height, width = grid_size((ph, pw), (nrows, ncols), len(legend),
                              has_header)
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    fig.patch.set_facecolor('white')

    def axes(x: float, y: float, w: float, h: float):
        """Axes at pixel box (x, y from the top-left), no frame."""
        ax = fig.add_axes(
            (x / width, 1. - (y + h) / height, w / width, h / height))
        ax.set_axis_off()
        return ax

    def text(x: float, y: float, s: str, **kwargs) -> None:
        fig.text(
            x / width,
            1. - y / height,
            s,
            fontsize=FONT_SIZE,
            va='center',
            **kwargs)

    top = 0
    if has_header:
        text(PAD, HEADER_H / 2, header, ha='left', fontweight='bold')
        top = HEADER_H
    r = 0
    for row in rows:
        for start in range(0, len(row), ncols):
            y = top + r * (TITLE_H + ph + PAD)
            for c, panel in enumerate(row[start:start + ncols]):
                x = PAD + c * (pw + PAD)
                text(x + pw / 2, y + TITLE_H / 2, panel.title, ha='center')
                image = np.repeat(
                    np.repeat(panel.image, scale, axis=0), scale, axis=1)
                axes(x, y + TITLE_H, pw, ph).imshow(
                    image, interpolation='nearest', aspect='auto')
            r += 1
    _draw_legend(fig, axes, text, top + nrows * (TITLE_H + ph + PAD) + PAD,
                 width, legend, class_names, palette)
    canvas.draw()
    picture = np.asarray(canvas.buffer_rgba())[..., :3]
    return _fit(picture, height, width)


def _draw_legend(fig, axes, text, y0: int, width: int, legend: Sequence[int],
                 class_names: Sequence[str],
                 palette: Sequence[Sequence[int]]) -> None:
    """Colour swatches and names of the legend's class ids, after the
    colour bar of the heat maps (0 to 1), row by row from ``y0``."""
    per_row = max(1, (width - PAD) // LEGEND_ENTRY_W)
    sw = LEGEND_ROW_H - 6  # swatch side

    def slot(i: int) -> Tuple[int, int]:
        return (PAD + (i % per_row) * LEGEND_ENTRY_W,
                y0 + (i // per_row) * LEGEND_ROW_H)

    x, y = slot(0)
    bar = axes(x + 22, y + 3, 80, sw)
    bar.imshow(np.linspace(0., 1., 80)[None], cmap='jet', aspect='auto')
    text(x, y + LEGEND_ROW_H / 2, '0', ha='left')
    text(x + 106, y + LEGEND_ROW_H / 2, '1', ha='left')
    for i, cid in enumerate(legend, start=1):
        x, y = slot(i)
        if cid == IGNORE_INDEX:
            colour, name = IGNORE_COLOUR, 'ignore'
        else:
            colour = tuple(palette[cid]) if cid < len(palette) else (0, 0, 0)
            name = class_names[cid] if cid < len(class_names) else str(cid)
        swatch = axes(x, y + 3, sw, sw)
        swatch.set_axis_on()
        swatch.set_xticks([])
        swatch.set_yticks([])
        swatch.imshow(np.asarray(colour, np.uint8)[None, None], aspect='auto')
        text(x + sw + 5, y + LEGEND_ROW_H / 2, name, ha='left')


def _fit(picture: np.ndarray, height: int, width: int) -> np.ndarray:
    """Crop or pad (white) to exactly (height, width): the canvas may round
    the figure size by a pixel."""
    out = np.full((height, width, 3), 255, dtype=np.uint8)
    h, w = min(height, picture.shape[0]), min(width, picture.shape[1])
    out[:h, :w] = picture[:h, :w]
    return out


def _to_uint8(image_01: np.ndarray) -> np.ndarray:
    return (np.clip(image_01, 0., 1.) * 255. + 0.5).astype(np.uint8)


__all__ = [
    'HEAT_KEYS', 'Panel', 'cam_grid_rows', 'colorize_label', 'draw_cam_grid',
    'draw_grid', 'grid_shape', 'grid_size', 'legend_entries', 'overlay_heat',
    'upscale_factor'
]
