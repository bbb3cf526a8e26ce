# Copyright (c) OpenMMLab. All rights reserved.
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList)
from torch import Tensor

from mmseg_wsss.registry import MODELS
from ..postprocess import CRFPostProcessor, fuse_mean_over_views
from ..wsss import confident_seeds, mask_outside_box, seed_maps
from .wsss_segmentor import WSSSSegmentor

#: The AGM stages of the paper (AGM-3, AGM-4, AGM-5).
AGM_STAGES = (3, 4, 5)
#: Where the boundary loss's CRF runs.
BOUNDARY_AT = ('feature', 'image')


@MODELS.register_module()
class AGENSegmentor(WSSSSegmentor):
    """AGEN (Zhang et al., Chinese Journal of Electronics 2023): attention
    guided enhancement network, one network trained end to end from image
    labels (paper Sec. III; no public code).

    .. code:: text

        image -> AGENBackbone
          branch A: A3, A4, A5 -> cls_head (two 3x3, 1x1) -> F^A
            -> p^A = sigmoid(GAP(F^A))                 -> loss_cls   (10)
            -> M^{f-b} (Eqs. 2-4), delta_A -> seeds H^Cla
          AGM-n, n = 5, 4, 3 (top down):
            branch C: A_n -> agm_cls (3x3 256, shared 3x3 256 + 1x1 C)
              -> F^{A_n}, enhanced by CoAM-n against the stage above's
                 (accumulated: CoAM-5 against F^A, CoAM-4 against the
                 enhanced F^{A_5}, ...)                           (5-9)
              -> p^{AGM-n} = sigmoid(GAP(F^{A_n}))     -> loss_cls_agm{n}
              -> M^{f-b}, delta_n -> seeds H^{AGM-n}
            branch D: B_n -> agm_seg (3x3 512, shared 3x3 512 + 1x1 C+1)
              -> S^{AGM-n}                  -> loss_seed_agm{n} (H^{AGM-n})
          branch B: conv6 -> seg_head -> S^SeB    -> loss_seed (H^Cla)  (12)
                                          -> loss_boundary (KL to its CRF)
                                                                (14, 15)

    The seeds are taken from the (enhanced) class-aware maps, so CoAM's
    lambda learns through the AGM's classification loss. The boundary
    loss's dense CRF runs on the CPU over the worker processes of
    ``train_cfg.boundary.crf`` in one blocking call per step; its seconds
    are logged as ``time_crf``.

    Ablations (paper Tables 1-3): ``agm_stages=()`` is the Baseline (A and
    B only), ``(4, )`` OA, ``(3, 4, 5)`` MA; ``coam_stages`` adds CoAMs (SC:
    ``agm_stages=(4, ), coam_stages=(4, )``; AC: all three).

    Inference: the softmax of S^SeB at the input size, averaged over
    ``test_cfg.scales`` (and flips), then the CRF of ``test_cfg.crf``.

    Args:
        backbone (dict): :class:`AGENBackbone`.
        num_classes (int): Classes with background (C + 1).
        cls_head (dict): Branch A's classifier (:class:`AGENBranch`
            arguments but the channels in and out). Defaults to 1024
            channels.
        seg_head (dict): Branch B's classifier. Defaults to 512 channels.
        agm_cls_head (dict): Branch C of every AGM. Defaults to 256.
        agm_seg_head (dict): Branch D of every AGM. Defaults to 512.
        agm_stages (Sequence[int]): AGMs, a subset of (3, 4, 5).
        coam_stages (Sequence[int]): AGMs with a CoAM, a subset of
            ``agm_stages``.
        share_cls_tail (bool): The AGMs share the last two layers of branch
            C (the paper). Defaults to True.
        share_seg_tail (bool): ... and of branch D (the paper's garbled
            sentence read the same way). Defaults to True.
        loss_cls (dict): Multi-label loss of every classification score.
        loss_seed (dict): :class:`BalancedSeedingLoss`.
        loss_boundary (dict, optional): :class:`ConstrainToBoundaryLoss`
            (None: off).
        train_cfg (dict): ``seeds`` (``bg_power`` d of Eq. 4, ``rule``
            'value' / 'top' for delta's two readings, ``delta`` per map:
            ``cls``, ``agm3``, ``agm4``, ``agm5``); ``ignore_padding``
            (seeds ignore the padded part of a crop); ``boundary`` (``at``
            'feature' (SEC: the CRF on the output grid, the image resized
            to it) or 'image'; ``crf``: :class:`CRFPostProcessor`
            arguments).
        test_cfg (dict): ``scales``, ``flip``, ``crf``.
        data_preprocessor (dict, optional): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
    """
    DEFAULT_TRAIN_CFG = dict(
        seeds=dict(
            bg_power=8.,
            rule='value',
            delta=dict(cls=0.3, agm3=0.4, agm4=0.4, agm5=0.3)),
        ignore_padding=True,
        boundary=dict(
            at='feature',
            # SEC's CRF (Gaussian 3 / 3, bilateral 80 / 13 / 10) with its xy
            # stds divided by SEC's scale factor 12 (41 x 41 outputs of 321
            # crops).
            crf=dict(
                preset='1stage',
                xy_scale=1 / 12,
                workers=2,
                backend='pydensecrf',
                device='cpu')))
    DEFAULT_TEST_CFG = dict(
        WSSSSegmentor.DEFAULT_TEST_CFG, scales=(1.0, ), flip=False)
    VISUAL_MAP_TITLES = dict(
        cam='CAM (branch A)',
        label_raw='argmax M^{f-b}',
        label_refined='seeds H^Cla')

    def __init__(self,
                 backbone: ConfigType,
                 num_classes: int,
                 cls_head: ConfigType = dict(channels=1024),
                 seg_head: ConfigType = dict(channels=512),
                 agm_cls_head: ConfigType = dict(channels=256),
                 agm_seg_head: ConfigType = dict(channels=512),
                 agm_stages: Sequence[int] = AGM_STAGES,
                 coam_stages: Sequence[int] = AGM_STAGES,
                 share_cls_tail: bool = True,
                 share_seg_tail: bool = True,
                 loss_cls: ConfigType = dict(
                     type='CrossEntropyLoss',
                     use_sigmoid=True,
                     avg_non_ignore=True,
                     loss_weight=1.0,
                     loss_name='loss_cls'),
                 loss_seed: ConfigType = dict(type='BalancedSeedingLoss'),
                 loss_boundary: OptConfigType = dict(
                     type='ConstrainToBoundaryLoss'),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if num_classes < 2:
            raise ValueError('num_classes counts background and at least one '
                             f'object class, got {num_classes}')
        self.agm_stages = self._check_stages('agm_stages', agm_stages,
                                             AGM_STAGES)
        self.coam_stages = self._check_stages('coam_stages', coam_stages,
                                              self.agm_stages)
        if self.train_cfg.boundary.at not in BOUNDARY_AT:
            raise ValueError(f'train_cfg.boundary.at must be one of '
                             f'{BOUNDARY_AT}, got '
                             f'{self.train_cfg.boundary.at!r}')
        self.num_classes = num_classes
        self.align_corners = False
        self.backbone = MODELS.build(backbone)
        a_ch, b_ch = self.backbone.cls_channels, self.backbone.seg_channels

        def branch(cfg: ConfigType, cin: int, cout: int) -> nn.Module:
            return MODELS.build(
                dict(
                    type='AGENBranch',
                    in_channels=cin,
                    out_channels=cout,
                    **cfg))

        self.cls_head = branch(cls_head, a_ch[-1], num_classes - 1)
        self.seg_head = branch(seg_head, b_ch[-1], num_classes)
        # The AGMs' branches C and D: with shared tails one AGENBranch per
        # kind, a first conv per stage; else one branch per stage.
        self.agm_cls, self.agm_seg = nn.ModuleList(), nn.ModuleList()
        self._agm_index: Dict[str, Dict[int, Tuple[int, int]]] = dict()
        cls_kind = ('agm_cls', agm_cls_head, a_ch, num_classes - 1,
                    share_cls_tail)
        seg_kind = ('agm_seg', agm_seg_head, b_ch, num_classes, share_seg_tail)
        for name, cfg, chans, out, shared in (cls_kind, seg_kind):
            groups = [self.agm_stages] if shared and self.agm_stages else [
                (n, ) for n in self.agm_stages
            ]
            index = {}
            for g, stages in enumerate(groups):
                getattr(self, name).append(
                    branch(cfg, [chans[n - 3] for n in stages], out))
                index.update({n: (g, i) for i, n in enumerate(stages)})
            self._agm_index[name] = index
        self.agm_coam = nn.ModuleDict({
            f'agm{n}':
            MODELS.build(dict(type='ContextAttention'))
            for n in self.coam_stages
        })
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_seed = MODELS.build(loss_seed)
        self.loss_boundary = MODELS.build(loss_boundary) \
            if loss_boundary else None
        self.boundary_crf = CRFPostProcessor(**self.train_cfg.boundary.crf)

    @staticmethod
    def _check_stages(name: str, stages: Sequence[int],
                      allowed: Sequence[int]) -> Tuple[int, ...]:
        stages = tuple(stages)
        if not set(stages) <= set(allowed) or len(set(stages)) != len(stages):
            raise ValueError(f'{name} must be distinct stages of '
                             f'{tuple(allowed)}, got {stages}')
        return tuple(sorted(stages, reverse=True))

    def agm_branch(self, name: str, n: int, x: Tensor) -> Tensor:
        """Branch C (``name='agm_cls'``) or D (``'agm_seg'``) of AGM-n."""
        g, i = self._agm_index[name][n]
        return getattr(self, name)[g](x, i)

    # Network -----------------------------------------------------------
    def extract_feat(self, inputs: Tensor) -> Dict[str, Tuple[Tensor, ...]]:
        """Branch A's (A3, A4, A5) and branch B's outputs."""
        return self.backbone(inputs)

    def class_maps(self, feats: Dict[str, Tuple[Tensor,
                                                ...]]) -> Dict[str, Tensor]:
        """Class-aware maps (B, C, h_n, w_n): ``cls`` (F^A) and
        ``agm{n}`` (F^{A_n}, CoAM-enhanced where enabled), top down."""
        maps = dict(cls=self.cls_head(feats['cls'][-1]))
        upper = maps['cls']
        for n in self.agm_stages:
            f = self.agm_branch('agm_cls', n, feats['cls'][n - 3])
            if n in self.coam_stages:
                f = self.agm_coam[f'agm{n}'](f, upper)
            maps[f'agm{n}'] = upper = f
        return maps

    def seg_maps(self, feats: Dict[str, Tuple[Tensor,
                                              ...]]) -> Dict[str, Tensor]:
        """Segmentation logits (B, C + 1, h_n, w_n): ``cls`` (S^SeB, the
        branch supervised by A's seeds) and ``agm{n}`` (S^{AGM-n})."""
        out = dict(cls=self.seg_head(feats['seg'][-1]))
        for n in self.agm_stages:
            out[f'agm{n}'] = self.agm_branch('agm_seg', n, feats['seg'][n - 3])
        return out

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tensor:
        """S^SeB logits (B, C + 1, h, w) at the feature stride."""
        return self.seg_head(self.extract_feat(inputs)['seg'][-1])

    # Seeds and losses --------------------------------------------------
    @torch.no_grad()
    def seeds(self, maps: Tensor, cls_label: Tensor, key: str,
              size: Tuple[int, int], img_box: List) -> Tensor:
        """The confident seed label (B, H, W) of class-aware maps
        (:func:`seed_maps`, :func:`confident_seeds`; delta of ``key``)."""
        cfg = self.train_cfg.seeds
        label = confident_seeds(
            seed_maps(maps.float(), cls_label, size, cfg.bg_power), cls_label,
            cfg.delta[key], cfg.rule)
        if self.train_cfg.ignore_padding:
            label = mask_outside_box(label, img_box)
        return label

    def boundary_loss(self, inputs: Tensor,
                      logits: Tensor) -> Tuple[Tensor, float]:
        """Eq. 14 on S^SeB: the KL from its softmax to its dense CRF, on the
        output grid (``at='feature'``, the image resized to it) or the
        image's.

        Returns:
            tuple: The loss and the CRF's seconds.
        """
        if self.train_cfg.boundary.at == 'image':
            logits = F.interpolate(
                logits,
                size=inputs.shape[-2:],
                mode='bilinear',
                align_corners=self.align_corners)
        probs = logits.float().softmax(dim=1)
        start = time.perf_counter()
        refined = self.boundary_crf.refine_probs(
            self.crf_images(inputs, probs.shape[-2:]),
            list(probs.detach().cpu().numpy()))
        seconds = time.perf_counter() - start
        refined = torch.from_numpy(np.stack(refined)).to(probs)
        return self.loss_boundary(probs, refined), seconds

    def loss(self, inputs: Tensor,
             data_samples: SampleList) -> Dict[str, Tensor]:
        """Eq. 15: the classification losses of A and every AGM (Eq. 11),
        the seeding losses of B and every AGM (Eq. 13) and the boundary
        loss of B."""
        cls_label = self.cls_labels(data_samples, inputs)
        target = cls_label.squeeze(1) if cls_label.shape[1] == 1 else cls_label
        img_box = self.img_boxes(data_samples)
        feats = self.extract_feat(inputs)
        maps, segs = self.class_maps(feats), self.seg_maps(feats)
        losses = {}
        for key, f in maps.items():
            suffix = '' if key == 'cls' else f'_{key}'
            logits = f.mean(dim=(-2, -1))  # GAP, then sigmoid in the loss
            losses[self.loss_cls.loss_name + suffix] = self.loss_cls(
                logits, target)
            label = self.seeds(f, cls_label, key, inputs.shape[-2:], img_box)
            losses[self.loss_seed.loss_name + suffix] = self.loss_seed(
                segs[key], label)
        if self.loss_boundary is not None:
            loss, seconds = self.boundary_loss(inputs, segs['cls'])
            losses[self.loss_boundary.loss_name] = loss
            # Logged beside the step time (not a loss: no 'loss' in the name).
            losses['time_crf'] = torch.tensor(seconds, device=inputs.device)
        return losses

    def _pseudo_labels(self, inputs: Tensor,
                       data_samples: SampleList) -> Tensor:
        """H^Cla, the seeds S^SeB is trained on."""
        cls_label = self.cls_labels(data_samples, inputs)
        f = self.cls_head(self.extract_feat(inputs)['cls'][-1])
        return self.seeds(f, cls_label, 'cls', inputs.shape[-2:],
                          self.img_boxes(data_samples))

    def _visual_maps(self, inputs: Tensor,
                     data_samples: SampleList) -> Dict[str, Tensor]:
        """'cam' (M^f of branch A), 'label_raw' (the argmax of M^{f-b})
        and 'label_refined' (its confident seeds H^Cla)."""
        cls_label = self.cls_labels(data_samples, inputs)
        f = self.cls_head(self.extract_feat(inputs)['cls'][-1])
        fb = seed_maps(f.float(), cls_label, inputs.shape[-2:],
                       self.train_cfg.seeds.bg_power)
        img_box = self.img_boxes(data_samples)
        return dict(
            cam=fb[:, 1:],
            label_raw=mask_outside_box(fb.argmax(dim=1), img_box),
            label_refined=self.seeds(f, cls_label, 'cls', inputs.shape[-2:],
                                     img_box))

    # Inference ---------------------------------------------------------
    def inference(self,
                  inputs: Tensor,
                  data_samples: OptSampleList = None) -> Tensor:
        """(B, C + 1, H, W) probabilities of S^SeB (see the class doc)."""

        def probs(x: Tensor) -> Tensor:
            return F.interpolate(
                self._forward(x),
                size=x.shape[-2:],
                mode='bilinear',
                align_corners=self.align_corners).softmax(dim=1)

        return fuse_mean_over_views(
            probs,
            inputs,
            scales=self.test_cfg.scales,
            flip=self.test_cfg.flip,
            align_corners=self.align_corners)
