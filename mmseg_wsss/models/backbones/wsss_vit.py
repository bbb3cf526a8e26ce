# Copyright (c) OpenMMLab. All rights reserved.
"""The ViT backbone of the ToCo family (ToCo, DuPL, FSR).

The single-stage WSSS methods built on ToCo use a timm-style ViT-B/16 and read
three things from it: the final patch tokens after the last LayerNorm (CAM,
segmentation head, patch-token contrast), the patch tokens of an intermediate
block that are *not* normed (the auxiliary CAM classifier), and the class
token. mmseg's :class:`VisionTransformer` already has the timm weight layout
(through ``tools/model_converters/timm2wsss_vit.py``), the patch embedding, the
blocks and the position-embedding resizing, so this class only re-writes the
forward pass and adds the options the methods need.
"""
import os.path as osp
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn.bricks.drop import DropPath
from mmengine.model.weight_init import trunc_normal_
from mmseg.models.backbones.vit import VisionTransformer
from mmseg.utils import ConfigType, OptConfigType
from torch import Tensor

from mmseg_wsss.registry import MODELS
from ..utils.class_token_aggregation import ClassTokenAggregation
from ..utils.fused_multihead_attention import fuse_attention


@MODELS.register_module()
class WSSSViT(VisionTransformer):
    """ViT returning ``(final map, auxiliary map, class token)``.

    Defaults are ViT-B/16 as used by ToCo and DuPL (DeiT-B or ViT-B timm
    weights): qkv and patch-embedding biases, no pre-norm, a final LayerNorm
    with timm's ``eps=1e-6``, no drop path, and position embeddings that are
    bicubically resized to the token grid of every input and **frozen**
    (``pos_embed.requires_grad = False``, as ToCo does).

    The forward pass follows ToCo's ``forward_features``: class token and
    position embeddings are added, all blocks run, the final LayerNorm is
    applied to all tokens; then

    * ``final_map`` = normed patch tokens as a ``(B, D, h, w)`` map,
    * ``aux_map`` = patch tokens output by block ``aux_layer`` (default
      ``-3``: the 10th of 12 blocks), not normed. If ``aux_layer`` is the last
      block, the normed tokens are returned instead, as ToCo overwrites its
      last stored embedding with the normed one,
    * ``cls_token`` = class token after the final LayerNorm, ``(B, D)``.

    FSR options: ``drop_path_rate`` (FSR: 0.1; applied to both the attention
    and the MLP residual branch as in timm, while mmseg's layer only puts it
    on the MLP branch), ``freeze_pos_embed=False`` (FSR trains them), and
    ``with_mask_token=True`` (a learnable token that replaces masked patch
    embeddings before position embeddings are added), and
    ``cls_token_from_aggregation=True``: FSR's class token outside the
    self-attention stack (``models/vit.py forward_features``): only the patch
    tokens (with their position embeddings; the class token gets none) pass
    the blocks, then :class:`ClassTokenAggregation` (``aggregation_depth``
    cross-attention blocks, query = the class-token parameter, keys/values =
    the last block's patch tokens before the final norm) produces the class
    token, and the final LayerNorm runs on ``[cls, patches]``. The aux map is
    the aux block's patch tokens, as in the default path.

    Args:
        img_size (int | tuple[int, int]): Input size the position embeddings
            are stored for (pretrained ViT-B/16: 224, i.e. a 14x14 grid).
            Inputs of other sizes get a resized copy in every forward pass.
            Defaults to 224.
        patch_size (int): Patch size (= output stride). Defaults to 16.
        patch_pad (str | int): Padding of the patch embedding. ``0`` (default)
            drops the rows/columns that do not fill a whole patch, as the
            timm/ToCo convolution does; ``'corner'`` zero-pads the bottom and
            right edges to a multiple of ``patch_size`` (mmseg's default).
        in_channels (int): Input channels. Defaults to 3.
        embed_dims (int): Token dimension D. Defaults to 768.
        num_layers (int): Number of blocks. Defaults to 12.
        num_heads (int): Attention heads. Defaults to 12.
        mlp_ratio (int): MLP hidden dim / D. Defaults to 4.
        aux_layer (int): Index of the block whose output is the auxiliary map;
            negative values count from the end. Defaults to -3.
        qkv_bias (bool): Bias in the qkv projection. Defaults to True.
        drop_rate (float): Dropout after position embedding and in the
            blocks. Defaults to 0.
        attn_drop_rate (float): Attention dropout. Defaults to 0.
        drop_path_rate (float): Stochastic depth rate of the last block (rates
            grow linearly from 0). Defaults to 0.
        norm_cfg (dict): Norm layer config. Defaults to
            ``dict(type='LN', eps=1e-6)`` (timm's ViT/DeiT value; mmseg's
            ``VisionTransformer`` default of 1e-5 would not reproduce timm).
        act_cfg (dict): MLP activation. Defaults to ``dict(type='GELU')``.
        patch_norm (bool): LayerNorm in the patch embedding. Defaults to False.
        patch_bias (bool): Bias in the patch embedding. Defaults to True.
        pre_norm (bool): LayerNorm before the first block. Defaults to False.
        final_norm (bool): LayerNorm after the last block. Defaults to True.
        interpolate_mode (str): Mode for position-embedding resizing.
            Defaults to 'bicubic' (with ``align_corners=False``, ToCo's).
        freeze_pos_embed (bool): Keep position embeddings fixed. Defaults to
            True (ToCo, DuPL); FSR sets False.
        with_mask_token (bool): Add a learnable mask token (FSR's masked
            patches). Defaults to False.
        fused_attention (bool): Run attention through
            ``F.scaled_dot_product_attention`` instead of mmcv's explicit
            softmax path that also averages the unused attention maps (same
            parameters and keys, same outputs up to rounding, about 1.6-1.9x
            faster). Defaults to True.
        cls_token_from_aggregation (bool): FSR's aggregation module.
            Defaults to False.
        aggregation_depth (int): Cross-attention blocks of the aggregation
            (FSR ``cls_depth``). Defaults to 2.
        aggregation_mask (str): 'none' (the released code: the class token
            attends to every patch token, masked ones included) or 'exclude'
            (the paper's masked cross-attention). Defaults to 'none'.
        num_fcs (int): Linear layers in each MLP. Defaults to 2.
        norm_eval (bool): Keep norm layers in eval mode. Defaults to False.
        with_cp (bool): Gradient checkpointing of the blocks. Defaults to
            False.
        frozen_exclude (list[str]): See mmseg's ``VisionTransformer``;
            ``['all']`` freezes nothing. Defaults to ``['all']``.
        pretrained (str, optional): Deprecated, use ``init_cfg``.
        init_cfg (dict, optional): Initialisation config, e.g.
            ``dict(type='Pretrained', checkpoint=PATH)`` with a checkpoint
            converted by ``tools/model_converters/timm2wsss_vit.py``.
    """

    def __init__(self,
                 img_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: int = 16,
                 patch_pad: Union[str, int] = 0,
                 in_channels: int = 3,
                 embed_dims: int = 768,
                 num_layers: int = 12,
                 num_heads: int = 12,
                 mlp_ratio: int = 4,
                 aux_layer: int = -3,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_cfg: ConfigType = dict(type='LN', eps=1e-6),
                 act_cfg: ConfigType = dict(type='GELU'),
                 patch_norm: bool = False,
                 patch_bias: bool = True,
                 pre_norm: bool = False,
                 final_norm: bool = True,
                 interpolate_mode: str = 'bicubic',
                 freeze_pos_embed: bool = True,
                 with_mask_token: bool = False,
                 fused_attention: bool = True,
                 cls_token_from_aggregation: bool = False,
                 aggregation_depth: int = 2,
                 aggregation_mask: str = 'none',
                 num_fcs: int = 2,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 frozen_exclude: Sequence[str] = ('all', ),
                 pretrained: Optional[str] = None,
                 init_cfg: OptConfigType = None) -> None:
        if not -num_layers <= aux_layer < num_layers:
            raise ValueError(f'aux_layer must index one of the {num_layers} '
                             f'blocks, got {aux_layer}')
        super().__init__(
            img_size=img_size,
            patch_size=patch_size,
            patch_pad=patch_pad,
            in_channels=in_channels,
            embed_dims=embed_dims,
            num_layers=num_layers,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            out_origin=False,
            # ``out_indices`` is unused by this forward; the final block keeps
            # mmseg's bookkeeping valid.
            out_indices=-1,
            qkv_bias=qkv_bias,
            drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate,
            drop_path_rate=drop_path_rate,
            with_cls_token=True,
            output_cls_token=True,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            patch_norm=patch_norm,
            patch_bias=patch_bias,
            pre_norm=pre_norm,
            final_norm=final_norm,
            interpolate_mode=interpolate_mode,
            num_fcs=num_fcs,
            norm_eval=norm_eval,
            with_cp=with_cp,
            frozen_exclude=list(frozen_exclude),
            pretrained=pretrained,
            init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.num_layers = num_layers
        self.aux_layer = aux_layer
        self.aux_index = aux_layer % num_layers
        self.freeze_pos_embed = freeze_pos_embed
        self.with_mask_token = with_mask_token
        self.drop_path_rate = drop_path_rate
        self.fused_attention = fused_attention
        if fused_attention:
            fuse_attention(self.layers)

        # mmseg's encoder layer applies stochastic depth only to its MLP
        # residual; timm (and FSR) also drop the attention residual. The
        # attention module adds ``dropout_layer(out)`` to its identity, so
        # putting a DropPath there gives timm's block.
        if drop_path_rate > 0:
            dpr = torch.linspace(0, drop_path_rate, num_layers).tolist()
            for rate, layer in zip(dpr, self.layers):
                layer.attn.dropout_layer = DropPath(rate)

        self.cls_token_from_aggregation = cls_token_from_aggregation
        if cls_token_from_aggregation:
            # Not in a pretrained ViT checkpoint: keeps its own FSR init
            # (mmseg's Pretrained loading is non-strict).
            self.cls_aggregation = ClassTokenAggregation(
                embed_dims,
                num_heads,
                depth=aggregation_depth,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg,
                aggregation_mask=aggregation_mask)

        if with_mask_token:
            self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
            # Initialised here, not in ``init_weights``: a pretrained
            # checkpoint has no mask token and mmseg's loading path would
            # otherwise leave it at zero.
            trunc_normal_(self.mask_token, std=.02)

        # ToCo/DuPL keep the (pretrained) position embeddings fixed; FSR
        # trains them. Loading a checkpoint copies in place, so the flag
        # survives ``init_weights``.
        self.pos_embed.requires_grad_(not freeze_pos_embed)

    def init_weights(self) -> None:
        """Load the ``Pretrained`` checkpoint, if any (mmseg's ViT path).

        Raises:
            FileNotFoundError: A local checkpoint is missing; says how the
                configs' checkpoints are made (nothing is downloaded here).
        """
        ckpt = self.init_cfg.get('checkpoint') if isinstance(
            self.init_cfg, dict) else None
        if ckpt and '://' not in str(ckpt) and not osp.isfile(ckpt):
            raise FileNotFoundError(
                f'WSSSViT init_cfg checkpoint "{ckpt}" not found. Convert '
                'timm DeiT/ViT weights with tools/model_converters/'
                'timm2wsss_vit.py; for the toy configs run bash '
                'tools/pretrain_toy_vit.sh; or set the backbone\'s '
                'init_cfg=None to train from scratch (--cfg-options '
                'model.backbone.init_cfg=None).')
        super().init_weights()

    @property
    def pos_grid(self) -> Tuple[int, int]:
        """Token grid ``(h, w)`` the stored position embeddings belong to."""
        return (self.img_size[0] // self.patch_size,
                self.img_size[1] // self.patch_size)

    def _pos_embeding(self, patched_img: Tensor, hw_shape: Tuple[int, int],
                      pos_embed: Tensor) -> Tensor:
        """Add position embeddings resized to ``hw_shape``.

        Unlike mmseg's version, which resizes only when the token *count*
        differs, this resizes whenever the grid differs (a 7x28 input has as
        many tokens as 14x14 but needs resizing), like ToCo, which always
        interpolates the patch part to the input grid.

        Args:
            patched_img (Tensor): Tokens (B, 1 + h*w, D), class token first.
            hw_shape (tuple[int, int]): Token grid (h, w) of the input.
            pos_embed (Tensor): Stored embeddings (1, 1 + H*W, D).

        Returns:
            Tensor: ``patched_img + pos_embed`` (after dropout), (B, 1+h*w, D).
        """
        pos_h, pos_w = self.pos_grid
        if pos_embed.shape[1] != pos_h * pos_w + 1:
            raise ValueError(
                f'pos_embed has {pos_embed.shape[1]} tokens, expected '
                f'{pos_h * pos_w + 1} for img_size {self.img_size} and '
                f'patch_size {self.patch_size}')
        if tuple(hw_shape) != (pos_h, pos_w):
            pos_embed = self.resize_pos_embed(pos_embed, hw_shape,
                                              (pos_h, pos_w),
                                              self.interpolate_mode)
        return self.drop_after_pos(patched_img + pos_embed)

    def _apply_mask(self, x: Tensor, mask: Tensor,
                    hw_shape: Tuple[int, int]) -> Tensor:
        """Replace masked patch embeddings by the mask token.

        Args:
            x (Tensor): Patch embeddings (B, h*w, D), no class token.
            mask (Tensor): Bool mask (B, h*w) or (B, h, w); True = masked.
            hw_shape (tuple[int, int]): Token grid (h, w).

        Returns:
            Tensor: (B, h*w, D).
        """
        if not self.with_mask_token:
            raise ValueError('a mask was given but the backbone has no mask '
                             'token; build it with with_mask_token=True')
        B, L, _ = x.shape
        mask = mask.reshape(mask.shape[0], -1)
        if mask.shape != (B, L):
            raise ValueError(
                f'mask must cover the {hw_shape[0]}x{hw_shape[1]} token grid '
                f'of each of the {B} images, i.e. have shape ({B}, {L}), got '
                f'{tuple(mask.shape)}')
        mask = mask.to(device=x.device, dtype=torch.bool).unsqueeze(-1)
        return torch.where(mask, self.mask_token.to(x.dtype), x)

    def _to_map(self, tokens: Tensor, hw_shape: Tuple[int, int]) -> Tensor:
        """(B, h*w, D) patch tokens to a (B, D, h, w) map."""
        B, _, C = tokens.shape
        return tokens.reshape(B, hw_shape[0], hw_shape[1],
                              C).permute(0, 3, 1, 2).contiguous()

    def forward(
            self,
            inputs: Tensor,
            mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """Forward pass.

        Args:
            inputs (Tensor): Images (B, 3, H, W).
            mask (Tensor, optional): Bool (B, h*w) (or (B, h, w)) with
                ``h, w = H // patch_size, W // patch_size`` (rounded up with
                ``patch_pad='corner'``); True marks patches whose embedding
                is replaced by the mask token before position embeddings are
                added. Needs ``with_mask_token=True``.

        Returns:
            tuple[Tensor, Tensor, Tensor]:

            - final_map (B, D, h, w): patch tokens after the final norm.
            - aux_map (B, D, h, w): patch tokens output by block
              ``aux_layer``, not normed.
            - cls_token (B, D): class token after the final norm.
        """
        B = inputs.shape[0]
        x, hw_shape = self.patch_embed(inputs)
        if mask is not None:
            x = self._apply_mask(x, mask, hw_shape)

        cls_tokens = self.cls_token.expand(B, -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)
        x = self._pos_embeding(x, hw_shape, self.pos_embed)
        if self.cls_token_from_aggregation:
            return self._forward_aggregation(x[:, 1:], hw_shape, mask)
        if self.pre_norm:
            x = self.pre_ln(x)

        aux = None
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i == self.aux_index:
                aux = x
        if self.final_norm:
            x = self.norm1(x)
        if self.aux_index == self.num_layers - 1:
            # ToCo stores the normed tokens as its last block output.
            aux = x

        final_map = self._to_map(x[:, 1:], hw_shape)
        aux_map = self._to_map(aux[:, 1:], hw_shape)
        return final_map, aux_map, x[:, 0]

    def _forward_aggregation(
            self, x: Tensor, hw_shape: Tuple[int, int],
            mask: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
        """FSR's path: patch tokens (with position embeddings) through the
        blocks, the class token from the aggregation module, the final
        norm on both."""
        if self.pre_norm:
            x = self.pre_ln(x)
        aux = None
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i == self.aux_index:
                aux = x
        cls = self.cls_aggregation(self.cls_token, x, mask)
        x = torch.cat([cls[:, None], x], dim=1)
        if self.final_norm:
            x = self.norm1(x)
        if self.aux_index == self.num_layers - 1:
            aux = x[:, 1:]
        return (self._to_map(x[:, 1:],
                             hw_shape), self._to_map(aux, hw_shape), x[:, 0])

    def train(self, mode: bool = True) -> 'WSSSViT':
        """Set train/eval mode; returns ``self`` (mmseg's override does not,
        which breaks ``model.eval()`` chaining)."""
        super().train(mode)
        return self

    def extra_repr(self) -> str:
        return (f'aux_layer={self.aux_layer}, '
                f'freeze_pos_embed={self.freeze_pos_embed}, '
                f'with_mask_token={self.with_mask_token}, '
                f'cls_token_from_aggregation='
                f'{self.cls_token_from_aggregation}')
