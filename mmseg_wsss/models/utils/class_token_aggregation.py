# Copyright (c) OpenMMLab. All rights reserved.
"""FSR's aggregation module: the class token from cross-attention over the
final patch tokens, outside the self-attention stack."""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.utils import ConfigType
from torch import Tensor

from mmseg_wsss.registry import MODELS
from .cross_attention_block import CrossAttentionBlock

AGGREGATION_MASKS = ('none', 'exclude')


@MODELS.register_module()
class ClassTokenAggregation(BaseModule):
    """``depth`` :class:`CrossAttentionBlock` s summarising patch tokens.

    official_code_notes 3 (FSR ``models/vit.py``): the patch tokens pass
    the 12 self-attention blocks *without* a class token; then
    ``cls_depth = 2`` cross-attention blocks update the (learnable,
    pretrained) class token with the output of the last block (before the
    final LayerNorm) as keys and values; the backbone then applies its
    final LayerNorm to ``[cls, patches]``. This module is the two blocks;
    the class token stays a parameter of the backbone.

    ``aggregation_mask``:

    * ``'none'`` (the released code, default): the class token attends to
      every patch token, the masked ones (mask-token embeddings after 12
      blocks) included.
    * ``'exclude'`` (paper, "Certain Feature Aggregation": attention
      "between the class token and a set of unmasked patch tokens"): masked
      keys get ``-inf`` logits, so their weight is exactly 0. Eq. 7 read
      literally, ``sigma((1 - M_b) QK^T / sqrt(D))``, would only zero their
      logits (weight ``exp(0)``), which contradicts the text; the text is
      followed. An image whose tokens are *all* masked attends to all of
      them (instead of a NaN softmax).

    Args:
        embed_dims (int): Token dimension D. Defaults to 768.
        num_heads (int): Defaults to 12.
        depth (int): Number of blocks (FSR ``cls_depth``). Defaults to 2.
        mlp_ratio (float): Defaults to 4.
        qkv_bias (bool): Defaults to True.
        norm_cfg (dict): Defaults to ``dict(type='LN', eps=1e-6)``.
        act_cfg (dict): Defaults to ``dict(type='GELU')``.
        aggregation_mask (str): 'none' or 'exclude'. Defaults to 'none'.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 embed_dims: int = 768,
                 num_heads: int = 12,
                 depth: int = 2,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 norm_cfg: ConfigType = dict(type='LN', eps=1e-6),
                 act_cfg: ConfigType = dict(type='GELU'),
                 aggregation_mask: str = 'none',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if aggregation_mask not in AGGREGATION_MASKS:
            raise ValueError(f'aggregation_mask must be one of '
                             f'{AGGREGATION_MASKS}, got {aggregation_mask!r}')
        self.embed_dims = embed_dims
        self.aggregation_mask = aggregation_mask
        self.blocks = nn.ModuleList([
            CrossAttentionBlock(
                embed_dims,
                num_heads,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg) for _ in range(depth)
        ])

    def forward(self,
                cls_token: Tensor,
                patch_tokens: Tensor,
                mask: Optional[Tensor] = None) -> Tensor:
        """Aggregate the patch tokens into the class token.

        Args:
            cls_token (Tensor): (B, D), (B, 1, D) or (1, 1, D) initial class
                token (the backbone's parameter, expanded to B).
            patch_tokens (Tensor): (B, N, D) output of the last
                self-attention block.
            mask (Tensor, optional): (B, N) bool, True at masked patches;
                only read with ``aggregation_mask='exclude'``.

        Returns:
            Tensor: (B, D) class token (before the final LayerNorm).
        """
        B, N, D = patch_tokens.shape
        query = cls_token.reshape(-1, 1, D).expand(B, 1, D)
        key_padding_mask = None
        if self.aggregation_mask == 'exclude' and mask is not None:
            key_padding_mask = mask.reshape(B, -1).to(
                device=patch_tokens.device, dtype=torch.bool)
            if key_padding_mask.shape[1] != N:
                raise ValueError(f'mask {tuple(mask.shape)} must be (B, N) '
                                 f'= {(B, N)}')
            # A fully masked image would give a NaN softmax: let it attend
            # to every token instead.
            key_padding_mask = key_padding_mask & \
                ~key_padding_mask.all(dim=1, keepdim=True)
            if not key_padding_mask.any():
                key_padding_mask = None
        for block in self.blocks:
            query = block(query, patch_tokens, key_padding_mask)
        return query[:, 0]

    def extra_repr(self) -> str:
        return f'aggregation_mask={self.aggregation_mask!r}'
