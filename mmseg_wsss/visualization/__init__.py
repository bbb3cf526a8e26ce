# Copyright (c) OpenMMLab. All rights reserved.
"""Pictures of WSSS models: CAM and pseudo-label grids."""
from .cam_grid import (HEAT_KEYS, Panel, cam_grid_rows, colorize_label,
                       draw_cam_grid, draw_grid, grid_shape, grid_size,
                       legend_entries, overlay_heat, upscale_factor)
from .model_grids import render_cam_grids

__all__ = [
    'HEAT_KEYS', 'Panel', 'cam_grid_rows', 'colorize_label', 'draw_cam_grid',
    'draw_grid', 'grid_shape', 'grid_size', 'legend_entries', 'overlay_heat',
    'render_cam_grids', 'upscale_factor'
]
