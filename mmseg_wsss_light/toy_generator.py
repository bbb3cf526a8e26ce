# Copyright (c) OpenMMLab. All rights reserved.
"""A seeded generator of the toy WSSS datasets (VOC layout).

Two domains share the drawing machinery, the file layout and the command
line; ``domain`` selects one:

- ``'shapes'`` (the default): every image holds 1 to 3 textured objects of 9
  classes (each class has its own shape and its own texture; colours are
  random per instance) on a cluttered, textured background. One class,
  ``boat``, is biased: it usually sits on a "water" band that is labelled
  background, and the water also appears without any boat. This reproduces
  the co-occurrence over-activation trap that WSSS methods target.
- ``'outdoor'``: the known hard cases of real WSSS that ``'shapes'`` lacks or
  has only mildly: a thin class (``pole``, a few px wide), small objects
  (``bird``, 1 to 4% of the image) beside large ones (``house``), several
  instances of one class in an image, two classes bound to a background
  structure (``duck`` on a water band, ``sheep`` in front of a fence) and
  background patches that carry a class's texture.

See ``docs/toy_dataset.md``.

Layout written by :func:`generate_dataset`::

    out_dir/JPEGImages/<name>.jpg           RGB, size x size, JPEG quality 95
    out_dir/SegmentationClass/<name>.png    palette PNG, pixel = class id
    out_dir/ImageSets/Segmentation/{train,val}.txt
    out_dir/classes.txt                     background first
    out_dir/cls_labels.json                 image-level labels (all splits)
    out_dir/toy_meta.json                   parameters, per-image records
                                            and measured statistics

``toy_meta.json`` records the domain in ``params['domain']`` for every domain
but the default, whose files stay byte-identical to those written before the
second domain existed (a missing key means ``'shapes'``).

Each image is drawn from its own random stream seeded by
``SeedSequence(seed, spawn_key=(split_code, index))``, so the output does not
depend on the number of worker processes.

It lives in ``mmseg_wsss_light``, outside the ``mmseg_wsss`` package (whose
``__init__`` imports torch and mmseg): it needs only numpy, OpenCV and
Pillow, and takes the labels-file helpers from
:mod:`mmseg_wsss_light.voc_layout`, which ``mmseg_wsss.datasets.cls_labels``
re-exports. The command line is ``tools/generate_toy_dataset.py``; from
Python: ``from mmseg_wsss_light.toy_generator import generate_dataset``.
"""
import colorsys
import functools
import json
import math
import multiprocessing as mp
import os
import os.path as osp
import shutil
import tempfile
from dataclasses import dataclass
from typing import (Callable, Dict, Iterable, List, Optional, Sequence, Tuple,
                    Union)

import cv2
import numpy as np
from PIL import Image

from .voc_layout import default_palette, labels_from_mask, save_cls_labels

# Bump when the drawing changes: a dataset on disk made by another version
# is regenerated instead of skipped.
GENERATOR_VERSION = 1

TOY_CLASSES = ('background', 'disc', 'square', 'triangle', 'star', 'cross',
               'ring', 'hexagon', 'crescent', 'boat')
# The texture of each object class (same order as TOY_CLASSES[1:]).
TOY_TEXTURES = ('concentric rings', 'checkerboard', 'parallel stripes',
                'polka dots', 'banded gradient', 'radial spokes', 'grid lines',
                'mottled speckle', 'chevrons')
BIASED_CLASS = 'boat'
CONTEXT_NAME = 'water'
SPLITS = ('train', 'val')
JPEG_QUALITY = 95

# --- generation parameters (fixed; not tuned to any model) ---
NUM_OBJECTS_PROBS = (0.4, 0.35, 0.25)  # P(1), P(2), P(3) objects drawn
AREA_SAMPLE_RANGE = (0.11, 0.33)  # target full-shape area / image area
MIN_VISIBLE_FRACTION = 0.5  # occlusion may hide at most half an object
MAX_PLACEMENT_TRIES = 60
P_CLUTTER = 0.7
P_BACKGROUND_PATTERN = 0.6
P_CONTEXT_WITH_CLASS = 0.9  # water under the boat
P_CONTEXT_WITHOUT_CLASS = 0.2  # water in images without a boat
WATERLINE_RANGE = (0.5, 0.85)  # top of the water band / image height
MIN_COLOUR_CONTRAST = 70.0  # RGB distance object colour <-> what is under it

# --- acceptance thresholds (checked by check_acceptance) ---
MIN_OBJECT_CLASSES = 8
OBJECT_AREA_RANGE = (0.10, 0.35)
MIN_MULTI_OBJECT_FRACTION = 0.30
MIN_CLUTTER_FRACTION = 0.50
MIN_CONTEXT_WITH_CLASS = 0.80
MIN_CONTEXT_WITHOUT_CLASS = 0.10
MIN_CLASS_BALANCE = 0.70  # rarest / most frequent class image count

# ---------------------------------------------------- the 'outdoor' domain ---
# Its own classes and parameters (fixed; not tuned to any model). It shares
# the drawing machinery above (placement with occlusion, colours, background,
# water, clutter, noise) with the 'shapes' domain.
OUTDOOR_VERSION = 1  # bump when its drawing changes (cf. GENERATOR_VERSION)
OUTDOOR_CLASSES = ('background', 'pole', 'bird', 'duck', 'sheep', 'house',
                   'car')
OUTDOOR_TEXTURES = ('bands along the pole', 'dark wing tips',
                    'feather scallops', 'woolly curls', 'brick courses',
                    'diagonal stripes')
THIN_CLASS = 'pole'  # a few px wide
SMALL_CLASS = 'bird'  # 1 to 4% of the image, usually several instances
# background structure -> the class that (nearly) always comes with it
STRUCTURE_CLASSES = {'water': 'duck', 'fence': 'sheep'}
# classes whose texture the background distractor patches carry
DISTRACTOR_CLASSES = ('duck', 'sheep', 'house', 'car')
OUTDOOR_NUM_CLASSES_PROBS = (0.35, 0.4, 0.25)  # P(1), P(2), P(3) classes
# Per class, P(1 instance), P(2 instances), ...
OUTDOOR_INSTANCE_PROBS = {
    'pole': (0.5, 0.3, 0.2),
    'bird': (0.15, 0.25, 0.25, 0.2, 0.15),
    'duck': (0.65, 0.35),
    'sheep': (0.65, 0.35),
    'house': (1., ),
    'car': (0.75, 0.25),
}
# Target full area / image area (the pole's follows from length and width).
OUTDOOR_AREA_SAMPLE_RANGE = {
    'bird': (0.01, 0.04),
    'duck': (0.04, 0.09),
    'sheep': (0.07, 0.15),
    'house': (0.18, 0.32),
    'car': (0.08, 0.16),
}
# Largest tilt from upright in degrees (every class may also be mirrored).
OUTDOOR_MAX_TILT = {
    'pole': 20,
    'bird': 30,
    'duck': 10,
    'sheep': 8,
    'house': 3,
    'car': 5
}
# Drawing order, back to front: later classes occlude earlier ones.
OUTDOOR_DRAW_ORDER = ('house', 'car', 'sheep', 'duck', 'pole', 'bird')
POLE_LENGTH_RANGE = (0.45, 0.95)  # / image side
# Drawn width in px at 96 px (scales with the image side); the raster
# measures about 1 px more (boundary pixels), see THIN_WIDTH_RANGE.
POLE_WIDTH_RANGE = (1.5, 3.0)
P_STRUCTURE_WITH_CLASS = 0.9  # water under a duck, a fence behind a sheep
P_STRUCTURE_WITHOUT_CLASS = 0.2
DUCK_WATERLINE_RANGE = (0.2, 0.55)  # waterline height on the duck's body
FENCE_BASE_RANGE = (0.5, 0.85)  # bottom of the fence band / image height
FENCE_HEIGHT_RANGE = (0.22, 0.36)  # / image height
SHEEP_FEET_BELOW_FENCE = (0., 0.06)  # / image height
P_DISTRACTOR = 0.5
DISTRACTOR_AREA_RANGE = (0.06, 0.14)  # per patch / image area

# --- 'outdoor' acceptance thresholds (checked by check_acceptance) ---
MIN_OUTDOOR_OBJECT_CLASSES = 6
# Measured full area / image area a placement must have, per class.
OUTDOOR_AREA_RANGE = {
    'pole': (0.008, 0.06),
    'bird': (0.009, 0.045),
    'duck': (0.036, 0.1),
    'sheep': (0.063, 0.165),
    'house': (0.162, 0.352),
    'car': (0.072, 0.176),
}
THIN_WIDTH_RANGE = (1.0, 5.0)  # measured pole width in px (any size)
MIN_THIN_ASPECT = 8.  # pole length / width
SMALL_AREA_RANGE = (0.01, 0.10)  # a small (not thin) object
LARGE_AREA_MIN = 0.15  # a large object
MIN_SMALL_OBJECT_FRACTION = 0.40  # of the instances of the compact classes
MIN_SMALL_BESIDE_LARGE_FRACTION = 0.15  # images with both
MIN_MULTI_INSTANCE_FRACTION = 0.40  # images with 2+ instances of a class
MIN_STRUCTURE_WITH_CLASS = 0.80
MIN_STRUCTURE_WITHOUT_CLASS = 0.10
MIN_DISTRACTOR_FRACTION = 0.35

DOMAINS = ('shapes', 'outdoor')
DEFAULT_DOMAIN = 'shapes'
# Smallest image side per domain (check_params, the CLI): at 32 px a
# 'shapes' object still covers >= 100 px (a radius of >= 5 px); at 48 px the
# 'outdoor' pole is still drawn >= 0.75 px wide (it measures >= 1.4 px) and a
# bird covers >= 23 px.
MIN_SIZES = {'shapes': 32, 'outdoor': 48}

SeedLike = Union[int, np.random.SeedSequence, np.random.Generator]
_SPLIT_CODES = {'train': 0, 'val': 1}

# ---------------------------------------------------------------- shapes ---


def _circle(r: float, cx: float = 0., cy: float = 0., n: int = 64):
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], 1)


def _regular(n: int, r: float, phase: float = -np.pi / 2):
    a = phase + np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([r * np.cos(a), r * np.sin(a)], 1)


def _star(n: int = 5, r_out: float = 1., r_in: float = 0.5):
    a = -np.pi / 2 + np.arange(2 * n) * np.pi / n
    r = np.where(np.arange(2 * n) % 2 == 0, r_out, r_in)
    return np.stack([r * np.cos(a), r * np.sin(a)], 1)


def _cross(w: float = 0.34):
    return np.array([[-w, -1], [w, -1], [w, -w], [1, -w], [1, w], [w, w],
                     [w, 1], [-w, 1], [-w, w], [-1, w], [-1, -w], [-w, -w]])


# Boat geometry in unit coordinates (y points down): hull, mast and sails.
_HULL_TOP, _HULL_BOTTOM = 0.25, 0.6
_BOAT = [
    (np.array([[-1., _HULL_TOP], [1., _HULL_TOP], [0.65, _HULL_BOTTOM],
               [-0.65, _HULL_BOTTOM]]), 1),
    (np.array([[-0.05, -1.], [0.05, -1.], [0.05, _HULL_TOP],
               [-0.05, _HULL_TOP]]), 1),
    (np.array([[0.1, -0.95], [0.1, 0.17], [0.9, 0.17]]), 1),
    (np.array([[-0.1, -0.8], [-0.1, 0.17], [-0.72, 0.17]]), 1),
]

# Each class: polygons in unit coordinates, drawn in order with value 1
# (fill) or 0 (cut a hole), so rings and crescents need no special case.
SHAPES: Dict[str, List[Tuple[np.ndarray, int]]] = {
    'disc': [(_circle(1.), 1)],
    'square': [(np.array([[-1., -1.], [1., -1.], [1., 1.], [-1., 1.]]), 1)],
    'triangle': [(_regular(3, 1.), 1)],
    'star': [(_star(5, 1., 0.52), 1)],
    'cross': [(_cross(), 1)],
    'ring': [(_circle(1.), 1), (_circle(0.56), 0)],
    'hexagon': [(_regular(6, 1., 0.), 1)],
    'crescent': [(_circle(1.), 1), (_circle(0.82, 0.48, -0.12), 0)],
    'boat': _BOAT,
}

_SUBPIXEL_SHIFT = 4  # cv2.fillPoly fixed-point bits: smooth edges at 96 px


def _transform(poly: np.ndarray, center: Tuple[float, float], scale: float,
               angle: float, flip: float) -> np.ndarray:
    """Unit coordinates (N, 2) -> image coordinates (N, 2)."""
    c, s = math.cos(angle), math.sin(angle)
    x = poly[:, 0] * flip
    y = poly[:, 1]
    return np.stack([
        center[0] + scale * (c * x - s * y), center[1] + scale *
        (s * x + c * y)
    ], 1)


Polygons = List[Tuple[np.ndarray, int]]


def _rasterize_polys(polys: Polygons, size: int, center: Tuple[float, float],
                     scale: float, angle: float, flip: float) -> np.ndarray:
    """Draw one shape given as polygons; returns its (size, size) bool mask.

    Args:
        polys (list[tuple[np.ndarray, int]]): Polygons in unit coordinates,
            each drawn in order with value 1 (fill) or 0 (cut a hole).
        size (int): Image side in pixels.
        center (tuple[float, float]): Position of the unit origin (px).
        scale (float): Pixels per unit.
        angle (float): Rotation in radians.
        flip (float): 1 or -1 (mirror the unit x axis).

    Returns:
        np.ndarray: (size, size) bool mask.
    """
    canvas = np.zeros((size, size), np.uint8)
    mult = 1 << _SUBPIXEL_SHIFT
    for poly, value in polys:
        pts = _transform(poly, center, scale, angle, flip)
        pts = np.round(pts * mult).astype(np.int32)
        cv2.fillPoly(canvas, [pts], value, cv2.LINE_8, _SUBPIXEL_SHIFT)
    return canvas.astype(bool)


def _rasterize(cls_name: str, size: int, center: Tuple[float, float],
               scale: float, angle: float, flip: float) -> np.ndarray:
    """Draw one shape of the 'shapes' domain; returns its bool mask."""
    return _rasterize_polys(SHAPES[cls_name], size, center, scale, angle, flip)


def _polys_unit_area(polys: Polygons) -> float:
    """Area of a shape at scale 1 (measured on a fine raster)."""
    scale = 200.
    mask = _rasterize_polys(polys, 512, (256., 256.), scale, 0., 1.)
    return float(mask.sum()) / scale**2


@functools.lru_cache(maxsize=None)
def _unit_area(cls_name: str) -> float:
    """Area of a 'shapes' class at scale 1 (measured on a fine raster)."""
    return _polys_unit_area(SHAPES[cls_name])


def _polys_extent(polys: Polygons, scale: float, angle: float,
                  flip: float) -> np.ndarray:
    """(min_x, min_y, max_x, max_y) of a shape around its centre."""
    pts = np.concatenate(
        [_transform(p, (0., 0.), scale, angle, flip) for p, v in polys if v])
    return np.concatenate([pts.min(0), pts.max(0)])


def _extent(cls_name: str, scale: float, angle: float,
            flip: float) -> np.ndarray:
    """(min_x, min_y, max_x, max_y) of a 'shapes' class around its centre."""
    return _polys_extent(SHAPES[cls_name], scale, angle, flip)


# -------------------------------------------------------------- textures ---


def _texture(cls_name: str, u: np.ndarray, v: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    """Class texture as a mixing weight in [0, 1].

    Args:
        cls_name (str): Object class.
        u, v (np.ndarray): (N,) object-local coordinates of the object's
            pixels (unit shape frame, so textures rotate and scale with it).
        rng (np.random.Generator): Random phase/speckle source.

    Returns:
        np.ndarray: (N,) float32 weight of the second colour.
    """
    ph = rng.uniform(0, 1)
    if cls_name == 'disc':
        t = np.sin(2 * np.pi * (np.hypot(u, v) * 3. + ph)) > 0
    elif cls_name == 'square':
        k = 2.5
        t = (np.floor(u * k + ph) + np.floor(v * k + ph)) % 2 == 0
    elif cls_name == 'triangle':
        t = np.sin(2 * np.pi * (u * 2.6 + ph)) > 0
    elif cls_name == 'star':
        k = 1. / 0.34
        du = u * k + ph - np.round(u * k + ph)
        dv = v * k + ph - np.round(v * k + ph)
        t = du**2 + dv**2 < 0.31**2
    elif cls_name == 'cross':
        # Sawtooth: repeated linear ramps, so the gradient has sharp edges
        # (a single smooth ramp looks like the smooth backgrounds).
        t = (u * 1.6 + ph) % 1.
    elif cls_name == 'ring':
        t = np.sin(12 * np.arctan2(v, u) + 2 * np.pi * ph) > 0
    elif cls_name == 'hexagon':
        k = 3.2
        du = np.abs((u * k + ph) % 1. - 0.5)
        dv = np.abs((v * k + ph) % 1. - 0.5)
        t = np.maximum(du, dv) > 0.36
    elif cls_name == 'crescent':
        # Blob noise tied to the object frame: a few random sinusoids.
        t = np.zeros_like(u)
        for _ in range(4):
            f = rng.uniform(4., 7.)
            a = rng.uniform(0, np.pi)
            t += np.sin(f * (u * np.cos(a) + v * np.sin(a)) +
                        rng.uniform(0, 2 * np.pi))
        t = t > 0.3
    elif cls_name == 'boat':
        t = np.sin(2 * np.pi * ((v + 0.7 * np.abs(u)) * 3. + ph)) > 0
    else:
        raise KeyError(cls_name)
    return t.astype(np.float32)


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> Tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return xs, ys


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, 3).astype(np.float32)


def _contrast_colour(c: np.ndarray) -> np.ndarray:
    """Second texture colour: a darker or lighter shade of ``c``."""
    lum = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
    if lum > 120:
        return c * 0.3
    return c + (255. - c) * 0.65


# ------------------------------------------------------------ background ---


def _smooth_noise(rng: np.random.Generator, size: int, cells: int,
                  channels: int) -> np.ndarray:
    """Low-frequency noise (size, size, channels), roughly unit variance."""
    coarse = rng.normal(0, 1, (cells, cells, channels)).astype(np.float32)
    out = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    return out.reshape(size, size, channels)


def _draw_background(rng: np.random.Generator,
                     size: int) -> Tuple[np.ndarray, Optional[str]]:
    """Random gradient + smooth colour noise + optional low-contrast pattern.

    Returns:
        tuple: (size, size, 3) float32 canvas and the pattern name or None.
    """
    xs, ys = _grid(size)
    c0, c1 = _random_colour(rng), _random_colour(rng)
    a = rng.uniform(0, 2 * np.pi)
    g = (xs * np.cos(a) + ys * np.sin(a)) / size
    g = (g - g.min()) / max(float(g.max() - g.min()), 1e-6)
    img = c0 * (1 - g[..., None]) + c1 * g[..., None]
    img += _smooth_noise(rng, size, int(rng.integers(3, 8)), 3) * rng.uniform(
        8, 30)
    pattern = None
    if rng.random() < P_BACKGROUND_PATTERN:
        pattern = ('stripes', 'checker', 'dots',
                   'blotches')[int(rng.integers(4))]
        period = rng.uniform(6, 20)
        b = rng.uniform(0, np.pi)
        pu = (xs * np.cos(b) + ys * np.sin(b)) / period
        pv = (-xs * np.sin(b) + ys * np.cos(b)) / period
        if pattern == 'stripes':
            p = np.sin(2 * np.pi * pu) > 0
        elif pattern == 'checker':
            p = (np.floor(pu) + np.floor(pv)) % 2 == 0
        elif pattern == 'dots':
            p = (pu - np.round(pu))**2 + (pv - np.round(pv))**2 < 0.09
        else:
            p = _smooth_noise(rng, size, int(rng.integers(6, 14)), 1)[...,
                                                                      0] > 0.3
        tint = _random_colour(rng)
        alpha = rng.uniform(0.12, 0.3)
        img = np.where(p[..., None], img * (1 - alpha) + tint * alpha, img)
    return img.astype(np.float32), pattern


def _draw_water(rng: np.random.Generator, img: np.ndarray,
                waterline: float) -> np.ndarray:
    """Paint the context: a wavy band of waves from ``waterline`` down.

    Returns:
        np.ndarray: (size, size) bool mask of the water pixels.
    """
    size = img.shape[0]
    xs, ys = _grid(size)
    top = waterline + rng.uniform(0.5, 2.) * np.sin(
        2 * np.pi * xs / rng.uniform(20, 40) + rng.uniform(0, 2 * np.pi))
    water = ys >= top
    hue = rng.uniform(185, 225) / 360.
    base = np.array(
        colorsys.hsv_to_rgb(hue, rng.uniform(0.4, 0.85), rng.uniform(
            0.45, 0.9)), np.float32) * 255.
    crest = base + (255. - base) * rng.uniform(0.45, 0.7)
    amp, wl = rng.uniform(1.5, 3.5), rng.uniform(14, 30)
    period, ph = rng.uniform(5, 9), rng.uniform(0, 2 * np.pi)
    phase = (ys - amp * np.sin(2 * np.pi * xs / wl + ph)) / period
    crest_mask = (phase % 1.) < 0.28
    depth = np.clip((ys - waterline) / max(size - waterline, 1.), 0, 1)
    colour = base[None, None] * (1 - 0.3 * depth[..., None])
    colour = np.where(crest_mask[..., None], crest[None, None], colour)
    img[water] = colour[water]
    return water


def _draw_clutter(rng: np.random.Generator, img: np.ndarray) -> int:
    """Distractors (strokes, lines, small blobs) labelled background.

    They are far smaller/thinner than any object class (a blob covers at
    most ~2% of the image, objects at least 10%).

    Returns:
        int: Number of distractors drawn.
    """
    size = img.shape[0]
    n = int(rng.integers(2, 7))
    for _ in range(n):
        colour = tuple(float(c) for c in _random_colour(rng))
        kind = int(rng.integers(3))
        if kind == 0:  # curvy stroke
            p0 = rng.uniform(0, size, 2)
            steps = rng.normal(0, size * 0.08, (int(rng.integers(3, 7)), 2))
            pts = np.cumsum(np.vstack([p0, steps]), 0)
            cv2.polylines(img, [np.round(pts).astype(np.int32)], False, colour,
                          int(rng.integers(1, 3)), cv2.LINE_AA)
        elif kind == 1:  # straight line
            p0 = rng.uniform(0, size, 2)
            ang, length = rng.uniform(0, 2 * np.pi), rng.uniform(12, 45)
            p1 = p0 + length * np.array([np.cos(ang), np.sin(ang)])
            cv2.line(img, tuple(int(round(v)) for v in p0),
                     tuple(int(round(v)) for v in p1), colour,
                     int(rng.integers(1, 3)), cv2.LINE_AA)
        else:  # small blob
            c = tuple(int(round(v)) for v in rng.uniform(0, size, 2))
            axes = tuple(int(v) for v in rng.integers(2, 8, 2))
            cv2.ellipse(img, c, axes, float(rng.uniform(0, 180)), 0, 360,
                        colour, -1, cv2.LINE_AA)
    return n


# ------------------------------------------------------------- placement ---


@dataclass
class _Placed:
    """One accepted object: geometry, class and full (unoccluded) mask."""
    cls_id: int
    center: Tuple[float, float]
    scale: float
    angle: float
    flip: float
    mask: np.ndarray
    full_area: int
    waterline: Optional[float] = None
    width: Optional[float] = None  # 'outdoor': the thin class's width (px)


def _try_place(rng: np.random.Generator, cls_id: int, size: int,
               on_water: bool) -> Optional[_Placed]:
    """One random placement of a class fully inside the image.

    The boat stays nearly upright; ``on_water`` puts its hull across a
    waterline inside ``WATERLINE_RANGE``.

    Returns:
        _Placed | None: None when this random size/pose does not fit.
    """
    name = TOY_CLASSES[cls_id]
    area = rng.uniform(*AREA_SAMPLE_RANGE) * size * size
    scale = math.sqrt(area / _unit_area(name))
    if name == BIASED_CLASS:
        angle = math.radians(rng.uniform(-15, 15))
    else:
        angle = rng.uniform(0, 2 * np.pi)
    flip = 1. if rng.random() < 0.5 else -1.
    x0, y0, x1, y1 = _extent(name, scale, angle, flip)
    # Keep the whole shape inside: its full area is then its pixel count.
    cx_lo, cx_hi = -x0, size - 1 - x1
    cy_lo, cy_hi = -y0, size - 1 - y1
    waterline = None
    if on_water:
        # Waterline crosses the hull between 15% and 60% of its height.
        f = rng.uniform(0.15, 0.6)
        v_w = _HULL_BOTTOM - f * (_HULL_BOTTOM - _HULL_TOP)
        off = _transform(np.array([[0., v_w]]), (0., 0.), scale, angle,
                         flip)[0, 1]
        cy_lo = max(cy_lo, WATERLINE_RANGE[0] * size - off)
        cy_hi = min(cy_hi, WATERLINE_RANGE[1] * size - off)
    if cx_lo > cx_hi or cy_lo > cy_hi:
        return None
    center = (rng.uniform(cx_lo, cx_hi), rng.uniform(cy_lo, cy_hi))
    if on_water:
        waterline = float(center[1] + off)
    mask = _rasterize(name, size, center, scale, angle, flip)
    full = int(mask.sum())
    frac = full / float(size * size)
    if not OBJECT_AREA_RANGE[0] <= frac <= OBJECT_AREA_RANGE[1]:
        return None
    return _Placed(cls_id, center, scale, angle, flip, mask, full, waterline)


def _place_objects(rng: np.random.Generator, class_ids: Sequence[int],
                   size: int, boat_on_water: bool) -> List[_Placed]:
    """Place objects in drawing order; later ones occlude earlier ones.

    A candidate is rejected when it would leave an earlier object with less
    than ``MIN_VISIBLE_FRACTION`` of its area visible, so every drawn object
    stays recognisable; an object that finds no place in
    ``MAX_PLACEMENT_TRIES`` is dropped (never the first one).
    """
    draws = []
    for cls_id in class_ids:
        on_water = boat_on_water and TOY_CLASSES[cls_id] == BIASED_CLASS
        draws.append(
            functools.partial(_try_place_shape, rng, cls_id, size, on_water))
    placed = _place_in_order(size, draws)
    if not placed:
        raise RuntimeError(f'could not place {TOY_CLASSES[class_ids[0]]}')
    return placed


def _try_place_shape(rng: np.random.Generator, cls_id: int, size: int,
                     on_water: bool,
                     placed: List[_Placed]) -> Optional[_Placed]:
    """:func:`_try_place` as a draw of :func:`_place_in_order`."""
    return _try_place(rng, cls_id, size, on_water)


def _place_in_order(
    size: int, draws: Sequence[Callable[[List[_Placed]], Optional[_Placed]]]
) -> List[_Placed]:
    """Place objects in drawing order; later ones occlude earlier ones.

    Args:
        size (int): Image side in pixels.
        draws (Sequence[Callable]): One per object, in drawing order: called
            with the objects placed so far, it returns one random candidate
            placement or None (this random draw does not fit).

    Returns:
        list[_Placed]: The accepted objects (an object that finds no place
        in ``MAX_PLACEMENT_TRIES`` draws is dropped; the first one gets 100
        times as many, and nothing can be occluded by it).
    """
    owner = np.full((size, size), -1, np.int16)
    placed: List[_Placed] = []
    for draw in draws:
        # The first object always fits in the end: nothing to occlude.
        tries = MAX_PLACEMENT_TRIES if placed else 100 * MAX_PLACEMENT_TRIES
        for _ in range(tries):
            cand = draw(placed)
            if cand is None:
                continue
            new_owner = owner.copy()
            new_owner[cand.mask] = len(placed)
            if all((new_owner == j).sum() >= MIN_VISIBLE_FRACTION * p.full_area
                   for j, p in enumerate(placed)):
                owner = new_owner
                placed.append(cand)
                break
    return placed


# ---------------------------------------------------------------- sample ---


def _as_rng(seed: SeedLike) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.Generator(np.random.PCG64(seed))


def sample_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
    """The random stream of one image: independent of worker scheduling."""
    return np.random.SeedSequence(seed, spawn_key=(_SPLIT_CODES[split], index))


def generate_sample(
        seed: SeedLike,
        size: int = 96,
        domain: str = DEFAULT_DOMAIN) -> Tuple[np.ndarray, np.ndarray, dict]:
    """Draw one image and its mask.

    Args:
        seed (int | np.random.SeedSequence | np.random.Generator): Random
            stream of the image (see :func:`sample_seed`).
        size (int): Image side in pixels. Defaults to 96.
        domain (str): One of ``DOMAINS``. Defaults to 'shapes'.

    Returns:
        tuple:
            - img (np.ndarray): (size, size, 3) uint8 RGB image.
            - mask (np.ndarray): (size, size) uint8 class ids, 0 background
              (also the structures, distractors and the clutter).
            - info (dict): JSON-serialisable record. Both domains:
              ``objects`` (drawing order, one entry per instance:
              ``class_id``, ``full_area`` = pixel count of the whole shape
              before occlusion, ``area_fraction`` = full_area / size**2,
              ``visible_area``, ``visible_fraction``; the 'outdoor' thin
              class also ``width``, its measured mean width in px),
              ``clutter`` (bool), ``num_clutter`` and
              ``background_pattern``. 'shapes': ``context`` (water drawn),
              ``waterline``, ``context_pixels`` (visible water pixels).
              'outdoor': ``water`` (bool), ``waterline``, ``water_pixels``,
              ``fence`` (None, 'pickets' or 'mesh'), ``fence_base``,
              ``fence_pixels``, ``distractor`` (the class whose texture the
              background patches carry, or None) and ``distractor_pixels``
              (visible pixels of each, all labelled background).
    """
    return _domain(domain).sample(_as_rng(seed), size)


def _shapes_sample(rng: np.random.Generator,
                   size: int) -> Tuple[np.ndarray, np.ndarray, dict]:
    """Draw one 'shapes' image (see :func:`generate_sample`)."""
    num_fg = len(TOY_CLASSES) - 1
    n = int(rng.choice(len(NUM_OBJECTS_PROBS), p=NUM_OBJECTS_PROBS)) + 1
    class_ids = [int(c) + 1 for c in rng.choice(num_fg, n, replace=False)]
    has_biased = TOY_CLASSES.index(BIASED_CLASS) in class_ids
    context = rng.random() < (
        P_CONTEXT_WITH_CLASS if has_biased else P_CONTEXT_WITHOUT_CLASS)
    clutter = rng.random() < P_CLUTTER

    placed = _place_objects(rng, class_ids, size, boat_on_water=context)

    img, pattern = _draw_background(rng, size)
    water = np.zeros((size, size), bool)
    waterline = None
    if context:
        boat_lines = [p.waterline for p in placed if p.waterline is not None]
        waterline = boat_lines[0] if boat_lines else rng.uniform(
            *WATERLINE_RANGE) * size
        water = _draw_water(rng, img, waterline)
    num_clutter = _draw_clutter(rng, img) if clutter else 0

    mask, owner = _paint_objects(rng, img, placed, TOY_CLASSES, _texture)
    img = _finish(rng, img)
    info = dict(
        objects=_object_records(placed, owner, size),
        clutter=bool(clutter),
        num_clutter=num_clutter,
        context=bool(context),
        waterline=None if waterline is None else float(waterline),
        context_pixels=int((water & (mask == 0)).sum()),
        background_pattern=pattern)
    return img, mask, info


def _paint_objects(
    rng: np.random.Generator, img: np.ndarray, placed: Sequence[_Placed],
    classes: Sequence[str],
    texture: Callable[[str, np.ndarray, np.ndarray, np.random.Generator],
                      np.ndarray]
) -> Tuple[np.ndarray, np.ndarray]:
    """Paint the placed objects in order onto ``img`` (in place).

    Each object gets a random colour that stands out from what lies under it
    and its class texture, drawn in the object's own frame.

    Returns:
        tuple: (size, size) uint8 class mask and (size, size) int16 map of
        the index of the top-most object (-1 where none).
    """
    size = img.shape[0]
    xs, ys = _grid(size)
    mask = np.zeros((size, size), np.uint8)
    owner = np.full((size, size), -1, np.int16)
    for k, p in enumerate(placed):
        m = p.mask
        # Pick a colour that stands out from what lies under the object.
        under = img[m].mean(0)
        best, best_d = None, -1.
        for _ in range(20):
            c = _random_colour(rng)
            d = float(np.linalg.norm(c - under))
            if d > best_d:
                best, best_d = c, d
            if d >= MIN_COLOUR_CONTRAST:
                break
        c1, c2 = best, _contrast_colour(best)
        # Pixel -> unit shape frame (inverse of _transform).
        dx = (xs[m] - p.center[0]) / p.scale
        dy = (ys[m] - p.center[1]) / p.scale
        ca, sa = math.cos(p.angle), math.sin(p.angle)
        u = (ca * dx + sa * dy) * p.flip
        v = -sa * dx + ca * dy
        t = texture(classes[p.cls_id], u, v, rng)[:, None]
        img[m] = c1 * (1 - t) + c2 * t
        mask[m] = p.cls_id
        owner[m] = k
    return mask, owner


def _finish(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Gaussian pixel noise, then rounding to uint8."""
    img += rng.normal(0, rng.uniform(2, 6), img.shape).astype(np.float32)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _object_records(placed: Sequence[_Placed], owner: np.ndarray,
                    size: int) -> List[dict]:
    """The ``info['objects']`` entries (see :func:`generate_sample`)."""
    objects = []
    for k, p in enumerate(placed):
        visible = int((owner == k).sum())
        obj = dict(
            class_id=p.cls_id,
            full_area=p.full_area,
            area_fraction=p.full_area / float(size * size),
            visible_area=visible,
            visible_fraction=visible / float(p.full_area))
        if p.width is not None:
            obj['width'] = p.width
        objects.append(obj)
    return objects


# ---------------------------------------------------- the 'outdoor' domain ---


def _ellipse(rx: float,
             ry: float,
             cx: float = 0.,
             cy: float = 0.,
             n: int = 48) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], 1)


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def _pole(half_width: float) -> Polygons:
    """A bar of half-length 1 along the unit y axis."""
    return [(_rect(-half_width, -1., half_width, 1.), 1)]


def _wool(n: int = 72) -> np.ndarray:
    """A sheep's fleece: an ellipse with a scalloped outline."""
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = 1. + 0.09 * np.abs(np.sin(5 * a))
    return np.stack([0.78 * r * np.cos(a), -0.12 + 0.42 * r * np.sin(a)], 1)


# Duck geometry (y points down): the body's top and bottom, for the
# waterline.
_DUCK_BODY = (-0.08, 0.68)
_GULL = np.array([[-1., -0.32], [-0.62, -0.5], [-0.12, -0.08], [0., 0.],
                  [0.12, -0.08], [0.62, -0.5], [1., -0.32], [0.58, -0.22],
                  [0.12, 0.22], [0., 0.3], [-0.12, 0.22], [-0.58, -0.22]])
OUTDOOR_SHAPES: Dict[str, Polygons] = {
    'bird': [(_GULL, 1), (_ellipse(0.15, 0.3, 0., 0.1), 1)],
    'duck': [
        (_ellipse(0.8, 0.38, -0.05, 0.3), 1),
        (np.array([[-0.85, 0.3], [-1., -0.02], [-0.55, 0.12]]), 1),
        (_rect(0.34, -0.4, 0.6, 0.15), 1),
        (_circle(0.26, 0.5, -0.48), 1),
        (np.array([[0.68, -0.56], [1., -0.42], [0.68, -0.36]]), 1),
    ],
    'sheep': [
        (_wool(), 1),
        (_ellipse(0.22, 0.15, 0.84, -0.3), 1),
        (_rect(-0.56, 0.15, -0.44, 0.75), 1),
        (_rect(-0.34, 0.15, -0.22, 0.75), 1),
        (_rect(0.24, 0.15, 0.36, 0.75), 1),
        (_rect(0.46, 0.15, 0.58, 0.75), 1),
    ],
    'house': [
        (_rect(-0.75, -0.1, 0.75, 1.), 1),
        (np.array([[-0.95, -0.1], [0., -1.], [0.95, -0.1]]), 1),
        (_rect(0.4, -0.8, 0.58, -0.3), 1),
        (_rect(-0.16, 0.52, 0.16, 1.01), 0),  # the door shows background
    ],
    'car': [
        (_rect(-1., 0.05, 1., 0.45), 1),
        (np.array([[-0.55, 0.06], [-0.33, -0.38], [0.36, -0.38], [0.62,
                                                                  0.06]]), 1),
        (_circle(0.21, -0.58, 0.47), 1),
        (_circle(0.21, 0.58, 0.47), 1),
    ],
}


@functools.lru_cache(maxsize=None)
def _outdoor_unit_area(cls_name: str) -> float:
    """Area of an 'outdoor' class at scale 1 (not the pole)."""
    return _polys_unit_area(OUTDOOR_SHAPES[cls_name])


def _outdoor_texture(cls_name: str, u: np.ndarray, v: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """'outdoor' class texture as a mixing weight in [0, 1].

    Same contract as :func:`_texture` (object-local unit coordinates; the
    pole's half-length is 1, so its bands follow its length).
    """
    ph = rng.uniform(0, 1)
    if cls_name == 'pole':
        t = (v * rng.uniform(1.5, 3.5) + ph) % 1. < 0.5
    elif cls_name == 'bird':
        t = np.abs(u) > 0.55 + 0.15 * ph
    elif cls_name == 'duck':
        k = 4.
        t = (v * k + 0.35 * np.abs(np.sin(np.pi * u * k)) + ph) % 1. < 0.45
    elif cls_name == 'sheep':
        a, b, c = rng.uniform(0, 2 * np.pi, 3)
        t = (np.sin(26. * u + a) + np.sin(26. * v + b) +
             np.sin(18. * (u + v) + c)) > 0.8
    elif cls_name == 'house':
        k = 5.
        row = np.floor(v * k + ph)
        t = ((v * k + ph) % 1. < 0.22) | ((u * 2.5 + 0.5 * row) % 1. < 0.12)
    elif cls_name == 'car':
        t = np.sin(2 * np.pi * ((u + v) * 2.2 + ph)) > 0
    else:
        raise KeyError(cls_name)
    return t.astype(np.float32)


def _try_place_outdoor(rng: np.random.Generator, cls_id: int, size: int,
                       anchor: Optional[Tuple[str, float]],
                       placed: List[_Placed]) -> Optional[_Placed]:
    """One random placement of an 'outdoor' instance fully inside the image.

    Args:
        rng (np.random.Generator): Random stream of the image.
        cls_id (int): Class id in ``OUTDOOR_CLASSES``.
        size (int): Image side in pixels.
        anchor (tuple[str, float], optional): ``('water', waterline)``: a
            duck whose body the waterline crosses at
            ``DUCK_WATERLINE_RANGE`` of its height; ``('fence', base)``: a
            sheep whose feet stand ``SHEEP_FEET_BELOW_FENCE`` below the
            fence base. None: anywhere.
        placed (list[_Placed]): Instances placed so far (unused).

    Returns:
        _Placed | None: None when this random size/pose does not fit.
    """
    name = OUTDOOR_CLASSES[cls_id]
    tilt = OUTDOOR_MAX_TILT[name]
    angle = math.radians(rng.uniform(-tilt, tilt))
    flip = 1. if rng.random() < 0.5 else -1.
    width = None
    if name == THIN_CLASS:
        length = rng.uniform(*POLE_LENGTH_RANGE) * size
        width = rng.uniform(*POLE_WIDTH_RANGE) * size / 96.
        scale = length / 2.
        polys = _pole(width / length)
    else:
        area = rng.uniform(*OUTDOOR_AREA_SAMPLE_RANGE[name]) * size * size
        scale = math.sqrt(area / _outdoor_unit_area(name))
        polys = OUTDOOR_SHAPES[name]
    x0, y0, x1, y1 = _polys_extent(polys, scale, angle, flip)
    cx_lo, cx_hi = -x0, size - 1 - x1
    cy_lo, cy_hi = -y0, size - 1 - y1
    if anchor is not None:
        struct, line = anchor
        if struct == 'water':
            f = rng.uniform(*DUCK_WATERLINE_RANGE)
            v_w = _DUCK_BODY[1] - f * (_DUCK_BODY[1] - _DUCK_BODY[0])
            cy = line - _transform(
                np.array([[0., v_w]]), (0., 0.), scale, angle, flip)[0, 1]
        else:
            # The feet (the lowest point, y1 below the centre) stand just
            # in front of the fence base.
            cy = line + rng.uniform(*SHEEP_FEET_BELOW_FENCE) * size - y1
        cy_lo, cy_hi = max(cy_lo, cy), min(cy_hi, cy)
    if cx_lo > cx_hi or cy_lo > cy_hi:
        return None
    center = (rng.uniform(cx_lo, cx_hi), rng.uniform(cy_lo, cy_hi))
    mask = _rasterize_polys(polys, size, center, scale, angle, flip)
    full = int(mask.sum())
    lo, hi = OUTDOOR_AREA_RANGE[name]
    if not lo <= full / float(size * size) <= hi:
        return None
    if width is not None:
        # The measured mean width: pixel count / axis length.
        width = round(full / (2. * scale), 3)
    return _Placed(cls_id, center, scale, angle, flip, mask, full, width=width)


def _draw_fence(rng: np.random.Generator, img: np.ndarray, base: float,
                size: int) -> Tuple[np.ndarray, str]:
    """Paint a fence band whose bottom is at ``base`` (background).

    Either pickets with two rails or a diagonal mesh between posts, in a
    wood-to-grey colour.

    Returns:
        tuple: (size, size) bool mask of the fence pixels and its kind.
    """
    xs, ys = _grid(size)
    k = size / 96.
    height = rng.uniform(*FENCE_HEIGHT_RANGE) * size
    top = base - height
    if rng.random() < 0.5:
        kind = 'pickets'
        period = rng.uniform(5, 9) * k
        fence = (xs - rng.uniform(0, period)) % period < rng.uniform(2,
                                                                     3.5) * k
        for f in (0.25, 0.7):
            fence |= np.abs(ys -
                            (top + f * height)) < rng.uniform(0.8, 1.3) * k
    else:
        kind = 'mesh'
        period, w = rng.uniform(5, 8) * k, rng.uniform(1., 1.6) * k
        fence = ((xs + ys) % period < w) | ((xs - ys) % period < w)
        posts = rng.uniform(18, 30) * k
        fence |= (xs - rng.uniform(0, posts)) % posts < 2.5 * k
        fence |= np.abs(ys - top - k) < k
    fence &= (ys >= top) & (ys < base)
    colour = np.array(
        colorsys.hsv_to_rgb(
            rng.uniform(20, 45) / 360., rng.uniform(0., 0.6),
            rng.uniform(0.35, 0.95)), np.float32) * 255.
    shade = 1. - 0.25 * np.clip((ys - top) / max(height, 1.), 0, 1)
    img[fence] = (colour[None, None] * shade[..., None])[fence]
    return fence, kind


def _draw_distractor(rng: np.random.Generator, img: np.ndarray, cls_name: str,
                     size: int, occupied: np.ndarray) -> np.ndarray:
    """Paint 1 or 2 background patches that carry ``cls_name``'s texture.

    A patch is a blob with a wobbly outline (6 to 14% of the image), centred
    on a pixel that no object or structure covers (so that it shows beside
    them);
    its texture is scaled like an instance of the class of mean size, at a
    random angle, in a random colour pair. It is labelled background.

    Args:
        rng (np.random.Generator): Random stream of the image.
        img (np.ndarray): (size, size, 3) float32 canvas, painted in place.
        cls_name (str): The class whose texture the patches carry.
        size (int): Image side in pixels.
        occupied (np.ndarray): (size, size) bool, the pixels of the objects
            and structures.

    Returns:
        np.ndarray: (size, size) bool mask of the patches.
    """
    xs, ys = _grid(size)
    lo_c, hi_c = int(0.15 * size), int(math.ceil(0.85 * size))
    free = np.argwhere(~occupied[lo_c:hi_c, lo_c:hi_c]) + lo_c
    lo, hi = OUTDOOR_AREA_SAMPLE_RANGE[cls_name]
    obj_scale = math.sqrt(
        (lo + hi) / 2. * size * size / _outdoor_unit_area(cls_name))
    total = np.zeros((size, size), bool)
    for _ in range(1 + int(rng.random() < 0.35)):
        area = rng.uniform(*DISTRACTOR_AREA_RANGE) * size * size
        aspect = rng.uniform(0.5, 1.)
        rx = math.sqrt(area / (np.pi * aspect))
        a = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        r = 1. + sum(0.08 * np.sin(j * a + rng.uniform(0, 2 * np.pi))
                     for j in (2, 3, 4))
        poly = np.stack([r * np.cos(a), aspect * r * np.sin(a)], 1)
        if len(free):
            cy, cx = free[int(rng.integers(len(free)))] + rng.uniform(
                -0.5, 0.5, 2)
        else:
            cx, cy = rng.uniform(0.15, 0.85, 2) * size
        center = (float(cx), float(cy))
        m = _rasterize_polys([(poly, 1)], size, center, rx,
                             rng.uniform(0, 2 * np.pi), 1.)
        ang = rng.uniform(0, 2 * np.pi)
        ca, sa = math.cos(ang), math.sin(ang)
        dx, dy = xs[m] - center[0], ys[m] - center[1]
        u = (ca * dx + sa * dy) / obj_scale
        v = (-sa * dx + ca * dy) / obj_scale
        c1 = _random_colour(rng)
        c2 = _contrast_colour(c1)
        t = _outdoor_texture(cls_name, u, v, rng)[:, None]
        img[m] = c1 * (1 - t) + c2 * t
        total |= m
    return total


def _outdoor_sample(rng: np.random.Generator,
                    size: int) -> Tuple[np.ndarray, np.ndarray, dict]:
    """Draw one 'outdoor' image (see :func:`generate_sample`)."""
    num_fg = len(OUTDOOR_CLASSES) - 1
    n = int(
        rng.choice(
            len(OUTDOOR_NUM_CLASSES_PROBS), p=OUTDOOR_NUM_CLASSES_PROBS)) + 1
    class_ids = sorted(
        (int(c) + 1 for c in rng.choice(num_fg, n, replace=False)),
        key=lambda c: OUTDOOR_DRAW_ORDER.index(OUTDOOR_CLASSES[c]))
    counts = []
    for c in class_ids:
        probs = OUTDOOR_INSTANCE_PROBS[OUTDOOR_CLASSES[c]]
        counts.append(int(rng.choice(len(probs), p=probs)) + 1)
    structure = {}
    for struct, cls_name in STRUCTURE_CLASSES.items():
        with_cls = OUTDOOR_CLASSES.index(cls_name) in class_ids
        structure[struct] = rng.random() < (
            P_STRUCTURE_WITH_CLASS if with_cls else P_STRUCTURE_WITHOUT_CLASS)
    clutter = rng.random() < P_CLUTTER
    distractor = None
    if rng.random() < P_DISTRACTOR:
        distractor = DISTRACTOR_CLASSES[int(
            rng.integers(len(DISTRACTOR_CLASSES)))]

    lines = {}
    if structure['water']:
        lines['water'] = rng.uniform(*WATERLINE_RANGE) * size
    if structure['fence']:
        lines['fence'] = rng.uniform(*FENCE_BASE_RANGE) * size
        if 'water' in lines:  # the fence stands on the shore
            lines['fence'] = min(lines['fence'], lines['water'])
    anchors = {
        cls_name: (struct, lines[struct])
        for struct, cls_name in STRUCTURE_CLASSES.items() if struct in lines
    }
    draws = [
        functools.partial(_try_place_outdoor, rng, c, size,
                          anchors.get(OUTDOOR_CLASSES[c]))
        for c, num in zip(class_ids, counts) for _ in range(num)
    ]
    placed = _place_in_order(size, draws)
    if not placed:
        raise RuntimeError(f'could not place {OUTDOOR_CLASSES[class_ids[0]]}')

    img, pattern = _draw_background(rng, size)
    fence = np.zeros((size, size), bool)
    water = np.zeros((size, size), bool)
    fence_kind = None
    if 'fence' in lines:
        fence, fence_kind = _draw_fence(rng, img, lines['fence'], size)
    if 'water' in lines:
        water = _draw_water(rng, img, lines['water'])
        fence &= ~water
    patches = np.zeros((size, size), bool)
    if distractor is not None:
        occupied = fence | water
        for p in placed:
            occupied |= p.mask
        patches = _draw_distractor(rng, img, distractor, size, occupied)
        fence &= ~patches
        water &= ~patches
    num_clutter = _draw_clutter(rng, img) if clutter else 0
    mask, owner = _paint_objects(rng, img, placed, OUTDOOR_CLASSES,
                                 _outdoor_texture)
    img = _finish(rng, img)
    bg = mask == 0
    info = dict(
        objects=_object_records(placed, owner, size),
        clutter=bool(clutter),
        num_clutter=num_clutter,
        water=bool(structure['water']),
        waterline=lines.get('water'),
        water_pixels=int((water & bg).sum()),
        fence=fence_kind,
        fence_base=lines.get('fence'),
        fence_pixels=int((fence & bg).sum()),
        distractor=distractor,
        distractor_pixels=int((patches & bg).sum()),
        background_pattern=pattern)
    return img, mask, info


# ------------------------------------------------------------ statistics ---


def _frac(xs: Sequence) -> float:
    return float(np.mean(xs)) if len(xs) else 0.


def dataset_stats(labels: Sequence[Sequence[int]],
                  infos: Sequence[dict],
                  size: int = 96,
                  domain: str = DEFAULT_DOMAIN) -> dict:
    """Acceptance statistics of a set of images.

    Args:
        labels (Sequence[Sequence[int]]): Per image, the foreground class ids
            present in its mask (:func:`labels_from_mask`).
        infos (Sequence[dict]): Per image, the ``info`` of
            :func:`generate_sample` (or its compact record in toy_meta.json).
        size (int): Image side, for pixel fractions. Defaults to 96.
        domain (str): The images' domain. Defaults to 'shapes'.

    Returns:
        dict: JSON-serialisable statistics (see docs/toy_dataset.md); those
        of a non-default domain carry its name under ``'domain'``.
    """
    if len(labels) != len(infos):
        raise ValueError(f'{len(labels)} label lists but {len(infos)} infos')
    return _domain(domain).stats(labels, infos, size)


def _shapes_stats(labels: Sequence[Sequence[int]], infos: Sequence[dict],
                  size: int) -> dict:
    """Acceptance statistics of 'shapes' images (see
    :func:`dataset_stats`)."""
    n = len(labels)
    biased = TOY_CLASSES.index(BIASED_CLASS)
    counts = [len(ls) for ls in labels]
    areas = [o['area_fraction'] for i in infos for o in i['objects']]
    vis = [o['visible_fraction'] for i in infos for o in i['objects']]
    fg = [sum(o['visible_area'] for o in i['objects']) for i in infos]
    with_b = [i['context'] for ls, i in zip(labels, infos) if biased in ls]
    without_b = [
        i['context'] for ls, i in zip(labels, infos) if biased not in ls
    ]
    class_counts = {
        name: sum(k in ls for ls in labels)
        for k, name in enumerate(TOY_CLASSES) if k
    }
    cc = list(class_counts.values())
    frac = _frac

    return dict(
        num_images=n,
        num_object_classes=len(TOY_CLASSES) - 1,
        objects_per_image={
            str(k): sum(c == k for c in counts)
            for k in range(0,
                           max(counts, default=0) + 1)
        },
        multi_object_fraction=frac([c >= 2 for c in counts]),
        mean_objects_per_image=frac(counts),
        object_area_fraction=dict(
            min=float(min(areas, default=0.)),
            mean=frac(areas),
            max=float(max(areas, default=0.)),
            in_range=frac([
                OBJECT_AREA_RANGE[0] <= a <= OBJECT_AREA_RANGE[1]
                for a in areas
            ])),
        visible_fraction=dict(
            min=float(min(vis, default=0.)),
            mean=frac(vis),
            occluded_objects=frac([v < 1. for v in vis])),
        foreground_pixel_fraction=frac(fg) / float(size * size),
        clutter_fraction=frac([i['clutter'] for i in infos]),
        background_pattern_fraction=frac(
            [i.get('background_pattern') is not None for i in infos]),
        biased_class=BIASED_CLASS,
        context=CONTEXT_NAME,
        num_images_with_biased_class=len(with_b),
        context_with_class=frac(with_b),
        context_without_class=frac(without_b),
        class_image_counts=class_counts,
        class_balance=float(min(cc)) / max(max(cc), 1))


def check_acceptance(stats: dict) -> List[str]:
    """The acceptance criteria a statistics dict fails (empty: all pass).

    The domain is read from ``stats['domain']`` (absent: 'shapes').
    """
    return _domain(stats.get('domain', DEFAULT_DOMAIN)).check(stats)


def _shapes_acceptance(stats: dict) -> List[str]:
    """The 'shapes' acceptance criteria a statistics dict fails."""
    fails = []

    def need(ok, msg):
        if not ok:
            fails.append(msg)

    need(stats['num_object_classes'] >= MIN_OBJECT_CLASSES,
         f'fewer than {MIN_OBJECT_CLASSES} object classes')
    need(stats['object_area_fraction']['in_range'] == 1.,
         f'object area outside {OBJECT_AREA_RANGE}')
    need(
        stats['multi_object_fraction'] >= MIN_MULTI_OBJECT_FRACTION,
        f'multi-object fraction {stats["multi_object_fraction"]:.3f} < '
        f'{MIN_MULTI_OBJECT_FRACTION}')
    need(
        stats['clutter_fraction'] >= MIN_CLUTTER_FRACTION,
        f'clutter fraction {stats["clutter_fraction"]:.3f} < '
        f'{MIN_CLUTTER_FRACTION}')
    need(
        stats['context_with_class'] >= MIN_CONTEXT_WITH_CLASS,
        f'context with {BIASED_CLASS} {stats["context_with_class"]:.3f} < '
        f'{MIN_CONTEXT_WITH_CLASS}')
    need(
        stats['context_without_class'] >= MIN_CONTEXT_WITHOUT_CLASS,
        f'context without {BIASED_CLASS} '
        f'{stats["context_without_class"]:.3f} < '
        f'{MIN_CONTEXT_WITHOUT_CLASS}')
    need(stats['class_balance'] >= MIN_CLASS_BALANCE,
         f'class balance {stats["class_balance"]:.3f} < {MIN_CLASS_BALANCE}')
    need(stats['objects_per_image'].get('0', 0) == 0,
         'an image without any object')
    return fails


def _outdoor_stats(labels: Sequence[Sequence[int]], infos: Sequence[dict],
                   size: int) -> dict:
    """Acceptance statistics of 'outdoor' images (see
    :func:`dataset_stats`)."""
    names = OUTDOOR_CLASSES
    thin = names.index(THIN_CLASS)
    counts = [len(ls) for ls in labels]
    objs = [o for i in infos for o in i['objects']]
    instances = [[o['class_id'] for o in i['objects'] if o['visible_area']]
                 for i in infos]
    multi_instance = [
        any(ids.count(c) >= 2 for c in set(ids)) for ids in instances
    ]
    areas = {
        name: [o['area_fraction'] for o in objs if o['class_id'] == k]
        for k, name in enumerate(names) if k
    }
    widths = [o['width'] for o in objs if o['class_id'] == thin]
    aspects = [
        o['full_area'] / o['width']**2 for o in objs if o['class_id'] == thin
    ]
    compact = [[
        o['area_fraction'] for o in i['objects'] if o['class_id'] != thin
    ] for i in infos]

    def small(a):
        return SMALL_AREA_RANGE[0] <= a < SMALL_AREA_RANGE[1]

    structures = {}
    for struct, cls_name in STRUCTURE_CLASSES.items():
        k = names.index(cls_name)
        with_c = [bool(i[struct]) for ls, i in zip(labels, infos) if k in ls]
        without_c = [
            bool(i[struct]) for ls, i in zip(labels, infos) if k not in ls
        ]
        structures[struct] = dict(
            cls=cls_name,
            num_images_with_class=len(with_c),
            with_class=_frac(with_c),
            without_class=_frac(without_c),
            pixel_fraction=_frac(
                [i[f'{struct}_pixels']
                 for i in infos if i[struct]]) / float(size * size))
    distractor = [i['distractor'] for i in infos]
    class_counts = {
        name: sum(k in ls for ls in labels)
        for k, name in enumerate(names) if k
    }
    cc = list(class_counts.values())
    vis = [o['visible_fraction'] for o in objs]
    n_inst = [len(ids) for ids in instances]
    return dict(
        domain='outdoor',
        num_images=len(labels),
        num_object_classes=len(names) - 1,
        objects_per_image={
            str(k): sum(c == k for c in counts)
            for k in range(0,
                           max(counts, default=0) + 1)
        },
        multi_object_fraction=_frac([c >= 2 for c in counts]),
        mean_objects_per_image=_frac(counts),
        instances_per_image={
            str(k): sum(c == k for c in n_inst)
            for k in range(0,
                           max(n_inst, default=0) + 1)
        },
        mean_instances_per_image=_frac(n_inst),
        multi_instance_fraction=_frac(multi_instance),
        class_instance_counts={
            name: len(a)
            for name, a in areas.items()
        },
        object_area_fraction={
            name:
            dict(
                min=float(min(a, default=0.)),
                mean=_frac(a),
                max=float(max(a, default=0.)),
                in_range=_frac([
                    OUTDOOR_AREA_RANGE[name][0] <= x <=
                    OUTDOOR_AREA_RANGE[name][1] for x in a
                ]))
            for name, a in areas.items()
        },
        thin_class=THIN_CLASS,
        thin_width_px=dict(
            min=float(min(widths, default=0.)),
            mean=_frac(widths),
            max=float(max(widths, default=0.))),
        thin_aspect=dict(
            min=float(min(aspects, default=0.)), mean=_frac(aspects)),
        small_object_fraction=_frac([small(a) for c in compact for a in c]),
        images_with_small_object=_frac([any(map(small, c)) for c in compact]),
        small_beside_large_fraction=_frac([
            any(map(small, c)) and any(a >= LARGE_AREA_MIN for a in c)
            for c in compact
        ]),
        visible_fraction=dict(
            min=float(min(vis, default=0.)),
            mean=_frac(vis),
            occluded_objects=_frac([v < 1. for v in vis])),
        foreground_pixel_fraction=_frac(
            [sum(o['visible_area'] for o in i['objects'])
             for i in infos]) / float(size * size),
        clutter_fraction=_frac([i['clutter'] for i in infos]),
        background_pattern_fraction=_frac(
            [i.get('background_pattern') is not None for i in infos]),
        structures=structures,
        distractor_fraction=_frac([d is not None for d in distractor]),
        distractor_textures={
            name: distractor.count(name)
            for name in DISTRACTOR_CLASSES
        },
        distractor_with_its_class=_frac([
            names.index(d) in ls for ls, d in zip(labels, distractor)
            if d is not None
        ]),
        distractor_pixel_fraction=_frac(
            [i['distractor_pixels']
             for i in infos if i['distractor']]) / float(size * size),
        class_image_counts=class_counts,
        class_balance=float(min(cc)) / max(max(cc), 1))


def _outdoor_acceptance(stats: dict) -> List[str]:
    """The 'outdoor' acceptance criteria a statistics dict fails."""
    fails = []

    def need(ok, msg):
        if not ok:
            fails.append(msg)

    need(stats['num_object_classes'] >= MIN_OUTDOOR_OBJECT_CLASSES,
         f'fewer than {MIN_OUTDOOR_OBJECT_CLASSES} object classes')
    need(stats['objects_per_image'].get('0', 0) == 0,
         'an image without any object')
    for name, a in stats['object_area_fraction'].items():
        need(a['in_range'] == 1.,
             f'{name} area outside {OUTDOOR_AREA_RANGE[name]}')
    w = stats['thin_width_px']
    need(
        THIN_WIDTH_RANGE[0] <= w['min'] and w['max'] <= THIN_WIDTH_RANGE[1],
        f'{THIN_CLASS} width {w["min"]:.2f} to {w["max"]:.2f} px outside '
        f'{THIN_WIDTH_RANGE}')
    need(
        stats['thin_aspect']['min'] >= MIN_THIN_ASPECT,
        f'{THIN_CLASS} length / width {stats["thin_aspect"]["min"]:.1f} < '
        f'{MIN_THIN_ASPECT}')
    for key, low in (('small_object_fraction', MIN_SMALL_OBJECT_FRACTION),
                     ('small_beside_large_fraction',
                      MIN_SMALL_BESIDE_LARGE_FRACTION),
                     ('multi_instance_fraction', MIN_MULTI_INSTANCE_FRACTION),
                     ('multi_object_fraction', MIN_MULTI_OBJECT_FRACTION),
                     ('distractor_fraction', MIN_DISTRACTOR_FRACTION),
                     ('clutter_fraction',
                      MIN_CLUTTER_FRACTION), ('class_balance',
                                              MIN_CLASS_BALANCE)):
        need(stats[key] >= low, f'{key} {stats[key]:.3f} < {low}')
    for struct, st in stats['structures'].items():
        need(
            st['with_class'] >= MIN_STRUCTURE_WITH_CLASS,
            f'{struct} with {st["cls"]} {st["with_class"]:.3f} < '
            f'{MIN_STRUCTURE_WITH_CLASS}')
        need(
            st['without_class'] >= MIN_STRUCTURE_WITHOUT_CLASS,
            f'{struct} without {st["cls"]} {st["without_class"]:.3f} < '
            f'{MIN_STRUCTURE_WITHOUT_CLASS}')
    return fails


# ---------------------------------------------------------------- writing ---

_RECORD_KEYS = ('clutter', 'context')


def _compact(info: dict) -> dict:
    """The per-image record kept in toy_meta.json (enough for the stats)."""
    rec = {k: info[k] for k in _RECORD_KEYS}
    rec['background_pattern'] = info['background_pattern']
    rec['objects'] = [[o['class_id'], o['full_area'], o['visible_area']]
                      for o in info['objects']]
    return rec


def _expand(rec: dict, size: int) -> dict:
    """Inverse of :func:`_compact` (the fields used by dataset_stats)."""
    info = dict(rec)
    info['objects'] = [
        dict(
            class_id=c,
            full_area=a,
            area_fraction=a / float(size * size),
            visible_area=v,
            visible_fraction=v / float(a)) for c, a, v in rec['objects']
    ]
    return info


_OUTDOOR_RECORD_KEYS = ('background_pattern', 'clutter', 'distractor',
                        'distractor_pixels', 'fence', 'fence_pixels', 'water',
                        'water_pixels')


def _outdoor_compact(info: dict) -> dict:
    """The per-image 'outdoor' record kept in toy_meta.json: the image keys
    of the stats and per instance ``[class_id, full_area, visible_area]``
    (+ ``width`` for the thin class)."""
    rec = {k: info[k] for k in _OUTDOOR_RECORD_KEYS}
    rec['objects'] = [[o['class_id'], o['full_area'], o['visible_area']] +
                      ([o['width']] if 'width' in o else [])
                      for o in info['objects']]
    return rec


def _outdoor_expand(rec: dict, size: int) -> dict:
    """Inverse of :func:`_outdoor_compact` (the fields of the stats)."""
    info = _expand(dict(rec, objects=[o[:3] for o in rec['objects']]), size)
    for obj, o in zip(info['objects'], rec['objects']):
        if len(o) > 3:
            obj['width'] = o[3]
    return info


def _write_sample(task: Tuple[str, str, int, int, int, str]) -> Tuple:
    """Generate and write one image + mask (runs in the worker processes).

    Args:
        task (tuple): (out_dir, split, index, size, seed, domain).

    Returns:
        tuple: (name, labels, compact record).
    """
    out_dir, split, index, size, seed, domain = task
    spec = _domain(domain)
    name = f'{split}_{index:05d}'
    img, mask, info = generate_sample(
        sample_seed(seed, split, index), size, domain)
    ok, buf = cv2.imencode('.jpg', img[..., ::-1],
                           [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f'JPEG encoding of {name} failed')
    buf.tofile(osp.join(out_dir, 'JPEGImages', f'{name}.jpg'))
    png = Image.frombytes('P', (size, size), np.ascontiguousarray(mask))
    png.putpalette(_flat_palette(len(spec.classes)))
    png.save(osp.join(out_dir, 'SegmentationClass', f'{name}.png'))
    labels = labels_from_mask(mask, len(spec.classes))
    return name, labels, spec.compact(info)


@functools.lru_cache(maxsize=None)
def _flat_palette(num_classes: int) -> List[int]:
    return [c for rgb in default_palette(num_classes) for c in rgb]


def _params(num_train: int,
            num_val: int,
            size: int,
            seed: int,
            domain: str = DEFAULT_DOMAIN) -> dict:
    spec = _domain(domain)
    params = dict(
        generator_version=spec.version,
        seed=int(seed),
        size=int(size),
        num_train=int(num_train),
        num_val=int(num_val),
        jpeg_quality=JPEG_QUALITY,
        classes=list(spec.classes))
    if domain != DEFAULT_DOMAIN:
        # Only then: the default domain's toy_meta.json stays as it was.
        params['domain'] = domain
    return params


def check_params(num_train: int,
                 num_val: int,
                 size: int,
                 domain: str = DEFAULT_DOMAIN) -> None:
    """Reject parameters that would write an empty split or objects that do
    not fit.

    Raises:
        ValueError: If ``domain`` is unknown, a split count is below 1 or
            ``size`` is below ``MIN_SIZES[domain]``.
    """
    _domain(domain)
    for key, num in (('num_train', num_train), ('num_val', num_val)):
        if int(num) != num or num < 1:
            raise ValueError(f'{key} must be a positive integer, got {num!r}')
    if int(size) != size or size < MIN_SIZES[domain]:
        raise ValueError(f'size must be an integer >= {MIN_SIZES[domain]} '
                         f'for the {domain!r} domain (the smallest side at '
                         f'which its objects keep their shapes), got '
                         f'{size!r}')


def _names(split: str, num: int) -> List[str]:
    return [f'{split}_{i:05d}' for i in range(num)]


def read_meta(out_dir: str) -> Optional[dict]:
    """``toy_meta.json`` of a dataset folder, or None if absent/unreadable."""
    try:
        with open(osp.join(out_dir, 'toy_meta.json')) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def dataset_is_complete(out_dir: str,
                        num_train: int = 2000,
                        num_val: int = 300,
                        size: int = 96,
                        seed: int = 0,
                        domain: str = DEFAULT_DOMAIN) -> bool:
    """Whether ``out_dir`` holds a complete dataset made with these params.

    Checks the parameters recorded in toy_meta.json (generator version and
    domain included) and that every listed image and mask file exists.
    """
    meta = read_meta(out_dir)
    if meta is None or meta.get('params') != _params(num_train, num_val, size,
                                                     seed, domain):
        return False
    for f in ('classes.txt', 'cls_labels.json'):
        if not osp.isfile(osp.join(out_dir, f)):
            return False
    try:
        jpgs = set(os.listdir(osp.join(out_dir, 'JPEGImages')))
        pngs = set(os.listdir(osp.join(out_dir, 'SegmentationClass')))
    except OSError:
        return False
    for split, num in (('train', num_train), ('val', num_val)):
        list_file = osp.join(out_dir, 'ImageSets', 'Segmentation',
                             f'{split}.txt')
        try:
            with open(list_file) as f:
                listed = f.read().split()
        except OSError:
            return False
        names = _names(split, num)
        if listed != names:
            return False
        if any(f'{n}.jpg' not in jpgs or f'{n}.png' not in pngs
               for n in names):
            return False
    return True


def stats_from_disk(out_dir: str) -> dict:
    """Recompute the statistics of a written dataset from its masks and
    toy_meta.json records (labels come from the PNGs, not the labels file).

    Returns:
        dict: ``{'train': stats, 'val': stats, 'all': stats}``.
    """
    meta = read_meta(out_dir)
    if meta is None:
        raise FileNotFoundError(f'no toy_meta.json in {out_dir}')
    size = meta['params']['size']
    domain = meta['params'].get('domain', DEFAULT_DOMAIN)
    spec = _domain(domain)
    out, all_l, all_i = {}, [], []
    for split in SPLITS:
        with open(
                osp.join(out_dir, 'ImageSets', 'Segmentation',
                         f'{split}.txt')) as f:
            names = f.read().split()
        labels, infos = [], []
        for name in names:
            mask = np.array(
                Image.open(
                    osp.join(out_dir, 'SegmentationClass', f'{name}.png')))
            labels.append(labels_from_mask(mask, len(spec.classes)))
            infos.append(spec.expand(meta['images'][name], size))
        out[split] = dataset_stats(labels, infos, size, domain)
        all_l += labels
        all_i += infos
    out['all'] = dataset_stats(all_l, all_i, size, domain)
    return out


def _dump_meta(path: str, meta: dict) -> None:
    """Write toy_meta.json: readable, with one line per image record."""
    head = {k: v for k, v in meta.items() if k != 'images'}
    lines = json.dumps(head, indent=1, sort_keys=True)[:-2]
    records = [
        f'  {json.dumps(n)}: {json.dumps(r, sort_keys=True)}'
        for n, r in sorted(meta['images'].items())
    ]
    with open(path, 'w') as f:
        f.write(lines + ',\n "images": {\n' + ',\n'.join(records) +
                '\n }\n}\n')


def _pool_context():
    # fork: workers inherit this module as it is, without re-importing
    # anything (spawn, where fork is missing, re-imports it by name).
    methods = mp.get_all_start_methods()
    return mp.get_context('fork' if 'fork' in methods else None)


def generate_dataset(out_dir: str,
                     num_train: int = 2000,
                     num_val: int = 300,
                     size: int = 96,
                     seed: int = 0,
                     workers: int = 2,
                     force: bool = False,
                     log: Optional[Callable[[str], None]] = None,
                     domain: str = DEFAULT_DOMAIN) -> dict:
    """Write the toy dataset to ``out_dir`` (see the module docstring).

    Skips the work when ``out_dir`` already holds a complete dataset made
    with the same parameters (unless ``force``). Everything is written to a
    temporary sibling folder that is renamed into place at the end, so an
    interrupted run leaves ``out_dir`` as it was. An existing ``out_dir`` is
    replaced only if it is empty or a toy dataset (has toy_meta.json).

    The acceptance criteria are not asserted: the measured statistics and
    the failed criteria (``check_acceptance``) are recorded in toy_meta.json.

    Args:
        out_dir (str): Dataset root to create.
        num_train (int): Training images. Defaults to 2000.
        num_val (int): Validation images. Defaults to 300.
        size (int): Image side in pixels. Defaults to 96.
        seed (int): Dataset seed. Defaults to 0.
        workers (int): Worker processes (output does not depend on it).
            Defaults to 2.
        force (bool): Regenerate even if complete. Defaults to False.
        log (Callable[[str], None], optional): Progress messages sink.
        domain (str): One of ``DOMAINS``. Defaults to 'shapes'.

    Returns:
        dict: Statistics ``{'train': ..., 'val': ..., 'all': ...,
        'acceptance_failures': [...]}`` as stored in toy_meta.json.

    Raises:
        ValueError: If the parameters fail :func:`check_params`.
    """
    check_params(num_train, num_val, size, domain)
    spec = _domain(domain)
    log = log or (lambda msg: None)
    out_dir = osp.abspath(out_dir)
    if not force and dataset_is_complete(out_dir, num_train, num_val, size,
                                         seed, domain):
        log(f'{out_dir} already holds a complete toy dataset with these '
            f'parameters; skipping (use force=True / --force to redo)')
        return read_meta(out_dir)['stats']
    if osp.exists(out_dir) and not (osp.isdir(out_dir) and
                                    (not os.listdir(out_dir) or osp.isfile(
                                        osp.join(out_dir, 'toy_meta.json')))):
        raise FileExistsError(
            f'{out_dir} exists and is not a toy dataset (no toy_meta.json); '
            f'refusing to replace it')

    parent = osp.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(out_dir)}.tmp-', dir=parent)
    try:
        for sub in ('JPEGImages', 'SegmentationClass',
                    osp.join('ImageSets', 'Segmentation')):
            os.makedirs(osp.join(tmp, sub))
        tasks = [(tmp, split, i, size, seed, domain)
                 for split, num in (('train', num_train), ('val', num_val))
                 for i in range(num)]
        log(f'generating {num_train} train + {num_val} val {domain!r} images '
            f'of {size}x{size} px with {workers} worker(s)')
        if workers <= 1:
            results = [_write_sample(t) for t in tasks]
        else:
            with _pool_context().Pool(workers) as pool:
                results = pool.map(
                    _write_sample,
                    tasks,
                    chunksize=max(1,
                                  len(tasks) // (workers * 8)))

        cls_labels, records = {}, {}
        for name, labels, rec in results:
            cls_labels[name] = labels
            records[name] = rec
        for split, num in (('train', num_train), ('val', num_val)):
            with open(
                    osp.join(tmp, 'ImageSets', 'Segmentation', f'{split}.txt'),
                    'w') as f:
                f.write(''.join(f'{n}\n' for n in _names(split, num)))
        with open(osp.join(tmp, 'classes.txt'), 'w') as f:
            f.write(''.join(f'{c}\n' for c in spec.classes))
        save_cls_labels(osp.join(tmp, 'cls_labels.json'), cls_labels)

        stats, all_l, all_i = {}, [], []
        for split, num in (('train', num_train), ('val', num_val)):
            names = _names(split, num)
            labels = [cls_labels[n] for n in names]
            infos = [spec.expand(records[n], size) for n in names]
            stats[split] = dataset_stats(labels, infos, size, domain)
            all_l += labels
            all_i += infos
        stats['all'] = dataset_stats(all_l, all_i, size, domain)
        stats['acceptance_failures'] = check_acceptance(stats['all'])
        meta = dict(
            params=_params(num_train, num_val, size, seed, domain),
            classes=list(spec.classes),
            stats=stats,
            images=records,
            **spec.meta)
        # toy_meta.json last: its presence marks a finished folder.
        _dump_meta(osp.join(tmp, 'toy_meta.json'), meta)

        old = None
        if osp.exists(out_dir):
            old = tempfile.mkdtemp(
                prefix=f'.{osp.basename(out_dir)}.old-', dir=parent)
            os.rmdir(old)
            os.rename(out_dir, old)
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    log(f'wrote {out_dir}')
    return stats


def iter_samples(num: int,
                 size: int = 96,
                 seed: int = 0,
                 split: str = 'train',
                 domain: str = DEFAULT_DOMAIN) -> Iterable[Tuple]:
    """In-memory samples ``(img, mask, info)`` exactly as written to disk
    (before JPEG compression) for ``split`` indices ``0..num-1``."""
    for i in range(num):
        yield generate_sample(sample_seed(seed, split, i), size, domain)


def preview_grid(domain: str = DEFAULT_DOMAIN,
                 num: int = 12,
                 columns: int = 6,
                 seed: int = 0,
                 split: str = 'train',
                 size: int = 96) -> Image.Image:
    """A picture of example images, each above its colour-coded mask.

    The examples are images ``0..num-1`` of ``split`` exactly as
    :func:`generate_dataset` draws them with this seed (before JPEG
    compression); a legend row names the mask colours (the palette of the
    PNG masks). Used for the pictures in ``docs/images/``.

    Args:
        domain (str): One of ``DOMAINS``. Defaults to 'shapes'.
        num (int): Number of examples. Defaults to 12.
        columns (int): Examples per row. Defaults to 6.
        seed (int): Dataset seed. Defaults to 0.
        split (str): 'train' or 'val'. Defaults to 'train'.
        size (int): Image side in pixels. Defaults to 96.

    Returns:
        PIL.Image.Image: The RGB picture.
    """
    from PIL import ImageDraw
    classes = _domain(domain).classes
    palette = np.array(default_palette(len(classes)), np.uint8)
    gap, rows = 2, -(-num // columns)
    cell = size + gap
    legend_h = 16
    grid = np.full((rows * 2 * cell + gap + legend_h, columns * cell + gap, 3),
                   255, np.uint8)
    for i, (img, mask,
            _) in enumerate(iter_samples(num, size, seed, split, domain)):
        r, c = divmod(i, columns)
        y, x = gap + 2 * r * cell, gap + c * cell
        grid[y:y + size, x:x + size] = img
        grid[y + cell:y + cell + size, x:x + size] = palette[mask]
    picture = Image.fromarray(grid)
    draw = ImageDraw.Draw(picture)
    x, y = gap, grid.shape[0] - legend_h + 2
    for k, name in enumerate(classes):
        draw.rectangle([x, y, x + 10, y + 10],
                       fill=tuple(int(v) for v in palette[k]),
                       outline=(0, 0, 0))
        draw.text((x + 14, y), name, fill=(0, 0, 0))
        x += 14 + int(draw.textlength(name)) + 12
    return picture


# ---------------------------------------------------------------- domains ---


@dataclass(frozen=True)
class _Domain:
    """What differs between the domains; the rest is shared."""
    classes: Tuple[str, ...]
    version: int
    sample: Callable[[np.random.Generator, int], Tuple]
    stats: Callable[[Sequence, Sequence, int], dict]
    check: Callable[[dict], List[str]]
    compact: Callable[[dict], dict]
    expand: Callable[[dict, int], dict]
    meta: Dict[str, object]  # extra keys of toy_meta.json


_DOMAINS: Dict[str, _Domain] = {
    'shapes':
    _Domain(
        classes=TOY_CLASSES,
        version=GENERATOR_VERSION,
        sample=_shapes_sample,
        stats=_shapes_stats,
        check=_shapes_acceptance,
        compact=_compact,
        expand=_expand,
        meta=dict(
            textures=dict(zip(TOY_CLASSES[1:], TOY_TEXTURES)),
            biased_class=BIASED_CLASS,
            context=CONTEXT_NAME)),
    'outdoor':
    _Domain(
        classes=OUTDOOR_CLASSES,
        version=OUTDOOR_VERSION,
        sample=_outdoor_sample,
        stats=_outdoor_stats,
        check=_outdoor_acceptance,
        compact=_outdoor_compact,
        expand=_outdoor_expand,
        meta=dict(
            domain='outdoor',
            textures=dict(zip(OUTDOOR_CLASSES[1:], OUTDOOR_TEXTURES)),
            thin_class=THIN_CLASS,
            small_class=SMALL_CLASS,
            structures=dict(STRUCTURE_CLASSES),
            distractor_classes=list(DISTRACTOR_CLASSES))),
}
assert tuple(_DOMAINS) == DOMAINS


def _domain(name: str) -> _Domain:
    try:
        return _DOMAINS[name]
    except KeyError:
        raise ValueError(f'unknown toy domain {name!r}; choose one of '
                         f'{DOMAINS}') from None


def domain_classes(domain: str = DEFAULT_DOMAIN) -> Tuple[str, ...]:
    """The class names of a domain, background first."""
    return _domain(domain).classes
