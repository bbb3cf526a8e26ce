# Copyright (c) OpenMMLab. All rights reserved.
"""A pre-norm transformer block in which one query token attends to a set
of key/value tokens (FSR's aggregation block, ``CABlock``)."""
from typing import Optional

import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmseg.utils import ConfigType
from torch import Tensor

from mmseg_wsss.registry import MODELS
from .fused_multihead_attention import FusedMultiheadAttention


@MODELS.register_module()
class CrossAttentionBlock(BaseModule):
    """``q <- q + MCA(LN(q), LN(x)); q <- q + FFN(LN(q))`` (paper Eq. 5-6).

    As FSR's ``CABlock`` (official_code_notes 3; ``models/vit.py``): one
    LayerNorm (``norm1``) normalises the query token and the key/value
    tokens (the code applies it to their concatenation; LayerNorm acts per
    token, so it is the same), queries come from the query token only,
    keys and values from the other tokens only (the query does not attend
    to itself), multi-head scaled dot-product attention with
    ``1 / sqrt(head_dim)`` (the paper writes ``sqrt(D)`` for one head),
    an output projection, then a pre-norm MLP (``norm2``, 2 linears, GELU).
    No dropout and no drop path (the code builds its blocks with 0).

    The attention is :class:`FusedMultiheadAttention` (the project's fused
    ``nn.MultiheadAttention``; its packed ``in_proj_weight`` holds the
    code's separate q, k, v linears) and the MLP mmcv's ``FFN`` as in the
    ViT blocks. Initialisation as FSR: ``trunc_normal_(std=0.02)`` on the
    projection and MLP weights, zero biases, LayerNorms 1 / 0.

    Args:
        embed_dims (int): Token dimension D.
        num_heads (int): Attention heads (ViT-B: 12).
        mlp_ratio (float): MLP hidden dim / D. Defaults to 4.
        qkv_bias (bool): Bias of the q, k, v projections. Defaults to True
            (FSR's ViT-B).
        norm_cfg (dict): Defaults to ``dict(type='LN', eps=1e-6)``.
        act_cfg (dict): Defaults to ``dict(type='GELU')``.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 norm_cfg: ConfigType = dict(type='LN', eps=1e-6),
                 act_cfg: ConfigType = dict(type='GELU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = FusedMultiheadAttention(
            embed_dims, num_heads, bias=qkv_bias, batch_first=True)
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn = FFN(
            embed_dims=embed_dims,
            feedforward_channels=int(embed_dims * mlp_ratio),
            num_fcs=2,
            ffn_drop=0.,
            dropout_layer=None,
            act_cfg=act_cfg,
            add_identity=True)
        self._init_fsr()

    def _init_fsr(self) -> None:
        """FSR's ``_init_weights`` (trunc normal 0.02, zero bias)."""
        trunc_normal_(self.attn.in_proj_weight, std=.02)
        if self.attn.in_proj_bias is not None:
            nn.init.constant_(self.attn.in_proj_bias, 0)
        for m in (self.attn.out_proj, *self.ffn.modules()):
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)

    def forward(self,
                query: Tensor,
                tokens: Tensor,
                key_padding_mask: Optional[Tensor] = None) -> Tensor:
        """Update the query token.

        Args:
            query (Tensor): (B, 1, D) query (class) token.
            tokens (Tensor): (B, N, D) key/value (patch) tokens.
            key_padding_mask (Tensor, optional): (B, N) bool, True at keys
                the query must not attend to (their weight is exactly 0).
                Every row needs at least one False.

        Returns:
            Tensor: (B, 1, D) updated query token.
        """
        normed_q = self.norm1(query)
        normed_kv = self.norm1(tokens)
        attended = self.attn(
            normed_q, normed_kv, normed_kv,
            key_padding_mask=key_padding_mask)[0]
        query = query + attended
        return self.ffn(self.norm2(query), identity=query)
