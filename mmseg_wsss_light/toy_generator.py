# Copyright (c) OpenMMLab. All rights reserved.
"""A seeded generator of the toy WSSS dataset (VOC layout).

Every image holds 1 to 3 textured objects of 9 classes (each class has its own
shape and its own texture; colours are random per instance) on a cluttered,
textured background. One class, ``boat``, is biased: it usually sits on a
"water" band that is labelled background, and the water also appears without
any boat. This reproduces the co-occurrence over-activation trap that WSSS
methods target. See ``docs/toy_dataset.md``.

Layout written by :func:`generate_dataset`::

    out_dir/JPEGImages/<name>.jpg           RGB, size x size, JPEG quality 95
    out_dir/SegmentationClass/<name>.png    palette PNG, pixel = class id
    out_dir/ImageSets/Segmentation/{train,val}.txt
    out_dir/classes.txt                     background first
    out_dir/cls_labels.json                 image-level labels (all splits)
    out_dir/toy_meta.json                   parameters, per-image records
                                            and measured statistics

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


def _rasterize(cls_name: str, size: int, center: Tuple[float, float],
               scale: float, angle: float, flip: float) -> np.ndarray:
    """Draw one shape; returns its (size, size) bool mask."""
    canvas = np.zeros((size, size), np.uint8)
    mult = 1 << _SUBPIXEL_SHIFT
    for poly, value in SHAPES[cls_name]:
        pts = _transform(poly, center, scale, angle, flip)
        pts = np.round(pts * mult).astype(np.int32)
        cv2.fillPoly(canvas, [pts], value, cv2.LINE_8, _SUBPIXEL_SHIFT)
    return canvas.astype(bool)


@functools.lru_cache(maxsize=None)
def _unit_area(cls_name: str) -> float:
    """Area of a shape at scale 1 (measured on a fine raster)."""
    scale = 200.
    mask = _rasterize(cls_name, 512, (256., 256.), scale, 0., 1.)
    return float(mask.sum()) / scale**2


def _extent(cls_name: str, scale: float, angle: float,
            flip: float) -> np.ndarray:
    """(min_x, min_y, max_x, max_y) of the shape around its centre."""
    pts = np.concatenate([
        _transform(p, (0., 0.), scale, angle, flip)
        for p, v in SHAPES[cls_name] if v
    ])
    return np.concatenate([pts.min(0), pts.max(0)])


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
    owner = np.full((size, size), -1, np.int8)
    placed: List[_Placed] = []
    for cls_id in class_ids:
        on_water = boat_on_water and TOY_CLASSES[cls_id] == BIASED_CLASS
        # The first object always fits in the end: nothing to occlude.
        tries = MAX_PLACEMENT_TRIES if placed else 100 * MAX_PLACEMENT_TRIES
        for _ in range(tries):
            cand = _try_place(rng, cls_id, size, on_water)
            if cand is None:
                continue
            new_owner = owner.copy()
            new_owner[cand.mask] = len(placed)
            if all((new_owner == j).sum() >= MIN_VISIBLE_FRACTION * p.full_area
                   for j, p in enumerate(placed)):
                owner = new_owner
                placed.append(cand)
                break
    if not placed:
        raise RuntimeError(f'could not place {TOY_CLASSES[class_ids[0]]}')
    return placed


# ---------------------------------------------------------------- sample ---


def _as_rng(seed: SeedLike) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.Generator(np.random.PCG64(seed))


def sample_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
    """The random stream of one image: independent of worker scheduling."""
    return np.random.SeedSequence(seed, spawn_key=(_SPLIT_CODES[split], index))


def generate_sample(seed: SeedLike,
                    size: int = 96) -> Tuple[np.ndarray, np.ndarray, dict]:
    """Draw one image and its mask.

    Args:
        seed (int | np.random.SeedSequence | np.random.Generator): Random
            stream of the image (see :func:`sample_seed`).
        size (int): Image side in pixels. Defaults to 96.

    Returns:
        tuple:
            - img (np.ndarray): (size, size, 3) uint8 RGB image.
            - mask (np.ndarray): (size, size) uint8 class ids, 0 background
              (also the water context and the clutter).
            - info (dict): JSON-serialisable record: ``objects`` (drawing
              order; per object ``class_id``, ``full_area`` = pixel count of
              the whole shape before occlusion, ``area_fraction`` =
              full_area / size**2, ``visible_area``, ``visible_fraction``),
              ``clutter`` (bool), ``num_clutter``, ``context`` (water drawn),
              ``waterline``, ``context_pixels`` (visible water pixels) and
              ``background_pattern``.
    """
    rng = _as_rng(seed)
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

    xs, ys = _grid(size)
    mask = np.zeros((size, size), np.uint8)
    for p in placed:
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
        t = _texture(TOY_CLASSES[p.cls_id], u, v, rng)[:, None]
        img[m] = c1 * (1 - t) + c2 * t
        mask[m] = p.cls_id

    img += rng.normal(0, rng.uniform(2, 6), img.shape).astype(np.float32)
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)

    objects = []
    for p in placed:
        visible = int((mask[p.mask] == p.cls_id).sum())
        objects.append(
            dict(
                class_id=p.cls_id,
                full_area=p.full_area,
                area_fraction=p.full_area / float(size * size),
                visible_area=visible,
                visible_fraction=visible / float(p.full_area)))
    info = dict(
        objects=objects,
        clutter=bool(clutter),
        num_clutter=num_clutter,
        context=bool(context),
        waterline=None if waterline is None else float(waterline),
        context_pixels=int((water & (mask == 0)).sum()),
        background_pattern=pattern)
    return img, mask, info


# ------------------------------------------------------------ statistics ---


def dataset_stats(labels: Sequence[Sequence[int]],
                  infos: Sequence[dict],
                  size: int = 96) -> dict:
    """Acceptance statistics of a set of images.

    Args:
        labels (Sequence[Sequence[int]]): Per image, the foreground class ids
            present in its mask (:func:`labels_from_mask`).
        infos (Sequence[dict]): Per image, the ``info`` of
            :func:`generate_sample` (or its compact record in toy_meta.json).
        size (int): Image side, for pixel fractions. Defaults to 96.

    Returns:
        dict: JSON-serialisable statistics (see docs/toy_dataset.md).
    """
    if len(labels) != len(infos):
        raise ValueError(f'{len(labels)} label lists but {len(infos)} infos')
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

    def frac(xs):
        return float(np.mean(xs)) if len(xs) else 0.

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
    """The acceptance criteria a statistics dict fails (empty: all pass)."""
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


def _write_sample(task: Tuple[str, str, int, int, int]) -> Tuple:
    """Generate and write one image + mask (runs in the worker processes).

    Args:
        task (tuple): (out_dir, split, index, size, seed).

    Returns:
        tuple: (name, labels, compact record).
    """
    out_dir, split, index, size, seed = task
    name = f'{split}_{index:05d}'
    img, mask, info = generate_sample(sample_seed(seed, split, index), size)
    ok, buf = cv2.imencode('.jpg', img[..., ::-1],
                           [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f'JPEG encoding of {name} failed')
    buf.tofile(osp.join(out_dir, 'JPEGImages', f'{name}.jpg'))
    png = Image.frombytes('P', (size, size), np.ascontiguousarray(mask))
    png.putpalette(_flat_palette())
    png.save(osp.join(out_dir, 'SegmentationClass', f'{name}.png'))
    labels = labels_from_mask(mask, len(TOY_CLASSES))
    return name, labels, _compact(info)


@functools.lru_cache(maxsize=1)
def _flat_palette() -> List[int]:
    return [c for rgb in default_palette(len(TOY_CLASSES)) for c in rgb]


def _params(num_train: int, num_val: int, size: int, seed: int) -> dict:
    return dict(
        generator_version=GENERATOR_VERSION,
        seed=int(seed),
        size=int(size),
        num_train=int(num_train),
        num_val=int(num_val),
        jpeg_quality=JPEG_QUALITY,
        classes=list(TOY_CLASSES))


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
                        seed: int = 0) -> bool:
    """Whether ``out_dir`` holds a complete dataset made with these params.

    Checks the parameters recorded in toy_meta.json (generator version
    included) and that every listed image and mask file exists.
    """
    meta = read_meta(out_dir)
    if meta is None or meta.get('params') != _params(num_train, num_val, size,
                                                     seed):
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
            labels.append(labels_from_mask(mask, len(TOY_CLASSES)))
            infos.append(_expand(meta['images'][name], size))
        out[split] = dataset_stats(labels, infos, size)
        all_l += labels
        all_i += infos
    out['all'] = dataset_stats(all_l, all_i, size)
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
                     log: Optional[Callable[[str], None]] = None) -> dict:
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

    Returns:
        dict: Statistics ``{'train': ..., 'val': ..., 'all': ...,
        'acceptance_failures': [...]}`` as stored in toy_meta.json.
    """
    log = log or (lambda msg: None)
    out_dir = osp.abspath(out_dir)
    if not force and dataset_is_complete(out_dir, num_train, num_val, size,
                                         seed):
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
        tasks = [(tmp, split, i, size, seed)
                 for split, num in (('train', num_train), ('val', num_val))
                 for i in range(num)]
        log(f'generating {num_train} train + {num_val} val images of '
            f'{size}x{size} px with {workers} worker(s)')
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
            f.write(''.join(f'{c}\n' for c in TOY_CLASSES))
        save_cls_labels(osp.join(tmp, 'cls_labels.json'), cls_labels)

        stats, all_l, all_i = {}, [], []
        for split, num in (('train', num_train), ('val', num_val)):
            names = _names(split, num)
            labels = [cls_labels[n] for n in names]
            infos = [_expand(records[n], size) for n in names]
            stats[split] = dataset_stats(labels, infos, size)
            all_l += labels
            all_i += infos
        stats['all'] = dataset_stats(all_l, all_i, size)
        stats['acceptance_failures'] = check_acceptance(stats['all'])
        meta = dict(
            params=_params(num_train, num_val, size, seed),
            classes=list(TOY_CLASSES),
            textures=dict(zip(TOY_CLASSES[1:], TOY_TEXTURES)),
            biased_class=BIASED_CLASS,
            context=CONTEXT_NAME,
            stats=stats,
            images=records)
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
                 split: str = 'train') -> Iterable[Tuple]:
    """In-memory samples ``(img, mask, info)`` exactly as written to disk
    (before JPEG compression) for ``split`` indices ``0..num-1``."""
    for i in range(num):
        yield generate_sample(sample_seed(seed, split, i), size)
