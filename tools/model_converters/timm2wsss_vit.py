# Copyright (c) OpenMMLab. All rights reserved.
"""Convert a timm ViT/DeiT checkpoint to ``WSSSViT`` (mmseg ViT) keys.

Example::

    python tools/model_converters/timm2wsss_vit.py \\
        pretrain/deit_base_patch16_224-b5f2ef4d.pth \\
        pretrain/deit_base_patch16_224-wsss.pth

The classification head (``head.*``), DeiT's distillation token and head
(``dist_token``, ``head_dist.*``) and the IN-21k ``pre_logits`` layer are
dropped; the distillation token's row of ``pos_embed`` is removed too. The
position embeddings are kept at the checkpoint's grid (14x14 for 224 px
models): ``WSSSViT`` resizes them to every input, or to its ``img_size`` when
loading (FSR).

The checkpoint is loaded weights-only (tensors, plus the ``argparse``
namespace DeiT training checkpoints store). A file that needs more is
refused unless ``--unsafe-pickle`` is given.
"""
import argparse
import math
import os
import os.path as osp
import sys
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Sequence

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
from mmseg_wsss.engine.runner.checkpoint import (  # noqa: E402
    UNSAFE_PICKLE_HELP, load_checkpoint_file)

# Keys with no counterpart in WSSSViT; dropped with a note.
DROPPED_PREFIXES = ('head.', 'head_dist.', 'pre_logits.')
DROPPED_KEYS = ('dist_token', )

# timm block sub-module -> mmseg ``TransformerEncoderLayer`` sub-module.
BLOCK_RENAMES = (
    ('norm1.', 'ln1.'),
    ('norm2.', 'ln2.'),
    ('attn.qkv.weight', 'attn.attn.in_proj_weight'),
    ('attn.qkv.bias', 'attn.attn.in_proj_bias'),
    ('attn.proj.', 'attn.attn.out_proj.'),
    ('mlp.fc1.', 'ffn.layers.0.0.'),
    ('mlp.fc2.', 'ffn.layers.1.'),
)


def unwrap_checkpoint(checkpoint: Mapping) -> Mapping:
    """Return the state dict inside ``{'model': ...}``/``{'state_dict':...}``.

    DeiT releases wrap weights in ``model``, mmengine/timm training
    checkpoints in ``state_dict``; plain timm weights are the dict itself.
    """
    for key in ('state_dict', 'model'):
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            return checkpoint[key]
    return checkpoint


def _convert_block_key(key: str) -> str:
    """``blocks.<i>.<timm name>`` to ``layers.<i>.<mmseg name>``."""
    _, idx, rest = key.split('.', 2)
    for old, new in BLOCK_RENAMES:
        if rest.startswith(old):
            return f'layers.{idx}.{new}{rest[len(old):]}'
    raise KeyError(f'unsupported timm ViT block parameter "{key}" (e.g. '
                   'LayerScale, q/k norms): WSSSViT has no such weight')


def convert_timm_vit(state_dict: Mapping[str, torch.Tensor],
                     verbose: bool = True) -> Dict[str, torch.Tensor]:
    """Map a timm ViT/DeiT state dict onto WSSSViT's keys.

    Args:
        state_dict (Mapping[str, Tensor]): timm weights (``cls_token``,
            ``pos_embed``, ``patch_embed.proj.*``, ``blocks.<i>.*``,
            ``norm.*``, ``head.*``...). A wrapped checkpoint is unwrapped.
        verbose (bool): Print a note for every dropped key. Defaults to True.

    Returns:
        dict[str, Tensor]: Weights with mmseg ``VisionTransformer`` names
        (``patch_embed.projection.*``, ``layers.<i>.ln1.*``,
        ``layers.<i>.attn.attn.in_proj_*``, ``layers.<i>.ffn.layers.*``,
        final ``ln1.*``), loadable with ``strict=True`` into a WSSSViT of
        the same size without a mask token.

    Raises:
        KeyError: On a timm parameter WSSSViT cannot hold (e.g. ``fc_norm``,
            ``reg_token``, LayerScale ``ls1.gamma``), rather than silently
            dropping part of the model.
    """
    state_dict = unwrap_checkpoint(state_dict)
    new_ckpt = OrderedDict()
    dropped = []
    for key, value in state_dict.items():
        if key.startswith(DROPPED_PREFIXES) or key in DROPPED_KEYS:
            dropped.append(key)
            continue
        if key in ('cls_token', 'pos_embed'):
            new_key = key
        elif key.startswith('patch_embed.proj.'):
            new_key = key.replace('patch_embed.proj.',
                                  'patch_embed.projection.')
            if key.endswith('weight') and value.ndim == 2:
                # Very old ViT weights store the patch projection as a linear
                # layer over flattened (C, p, p) patches.
                patch = int(round(math.sqrt(value.shape[1] / 3)))
                value = value.reshape(value.shape[0], 3, patch, patch)
        elif key.startswith('blocks.'):
            new_key = _convert_block_key(key)
        elif key.startswith('norm.'):
            # mmseg names the final LayerNorm ``ln1`` (build_norm_layer with
            # postfix 1).
            new_key = 'ln1.' + key[len('norm.'):]
        else:
            raise KeyError(f'unsupported timm ViT parameter "{key}": '
                           'WSSSViT has no such weight')
        new_ckpt[new_key] = value

    if 'dist_token' in dropped and 'pos_embed' in new_ckpt:
        # Distilled DeiT: pos_embed rows are [cls, dist, patches...]; the
        # distillation row has no token to be added to any more.
        pos_embed = new_ckpt['pos_embed']
        new_ckpt['pos_embed'] = torch.cat((pos_embed[:, :1], pos_embed[:, 2:]),
                                          dim=1)
        dropped.append('pos_embed[:, 1] (distillation token position)')
    if verbose and dropped:
        print('timm2wsss_vit: dropped (no counterpart in WSSSViT): ' +
              ', '.join(dropped))
    return new_ckpt


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description='Convert a timm ViT/DeiT checkpoint to WSSSViT '
        '(mmseg VisionTransformer) keys.')
    parser.add_argument('src', help='timm checkpoint path')
    parser.add_argument('dst', help='output path')
    parser.add_argument(
        '--unsafe-pickle', action='store_true', help=UNSAFE_PICKLE_HELP)
    args = parser.parse_args(argv)

    # DeiT training checkpoints store their argparse namespace beside the
    # weights: a plain attribute container, rebuilt without running code.
    checkpoint = load_checkpoint_file(
        args.src, args.unsafe_pickle, allowed_globals=[argparse.Namespace])
    weights = convert_timm_vit(checkpoint)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(weights, args.dst)
    print(f'timm2wsss_vit: wrote {len(weights)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
