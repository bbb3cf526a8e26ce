# Copyright (c) OpenMMLab. All rights reserved.
from typing import Dict, Optional

import torch
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList
from torch import Tensor

from mmseg_wsss.registry import MODELS
from ..networks import ToCoNetwork
from ..wsss import EMATeacher, UncertaintyMasking, current_iter
from .toco_segmentor import ToCoSegmentor

TEACHER_KEYS = ('momentum', 'end_momentum', 'schedule', 'param_groups',
                'eval_mode')
TEST_NETWORKS = ('student', 'teacher')


@MODELS.register_module()
class FSRSegmentor(ToCoSegmentor):
    """FSR (AAAI 2024): progressive feature self-reinforcement on ToCo.

    .. code:: text

        view 1 ─ student ─ classifiers, PTC, LargeFOV (ToCo's losses, seg /
               │           PTC labels from view 1's CAMs)
        view 2 ─ mask uncertain blocks ─ student ─ proj_head ─┐ s
        views 1, 2 (unmasked) ─ EMA teacher ─ proj_head ──────┘ t
            class loss: t(cls of view 1) -> s(cls of view 2)
            patch loss: t(patches of view 2) -> s(masked patches of view 2)

    Per iteration (the released ``train_voc.py``, the default form):

    1. the EMA teacher (a copy of the whole network) takes the update of
       the previous optimiser step (:meth:`update_teacher`);
    2. view 2 (``data_sample.views[0]``, an independent global view) gets a
       block mask (:class:`UncertaintyMasking`): random for the first
       ``masking.random_iters`` iterations, then the blocks where the
       student's multi-scale aux CAM of view 2 is uncertain first;
    3. one student pass over both views (view 2 masked); the class and
       patch tokens of both go through ``proj_head``; ToCo's losses are
       computed on view 1 as in :class:`ToCoSegmentor` (with FSR's gate
       rule: segmentation and energy from iteration 2,000 itself);
    4. the teacher sees both views unmasked; the two self-distillation
       losses compare the projections (while ``iteration < fsr_iters``).

    The teacher update of iteration ``n - 1`` (code: after the optimiser
    step of ``n - 1``, with ``m[n - 1]``) is applied at the start of
    iteration ``n`` instead: the same teacher is used at every forward, no
    hook is needed, and a checkpoint holds the teacher and the iteration of
    its last update, so ``--resume`` continues exactly.

    Args:
        network (dict): :class:`ToCoNetwork` config whose backbone has FSR's
            class-token aggregation and mask token and which has a
            ``proj_head`` (FSR: DINOHead 768 -> 4096).
        loss_fsr_class (dict): :class:`FSRClassLoss` config.
        loss_fsr_patch (dict): :class:`FSRPatchLoss` config.
        loss_ptc, loss_seg, loss_energy: As :class:`ToCoSegmentor`.
        train_cfg (dict): ToCo's keys, plus ``fsr_iters`` (FSR losses on
            while the iteration is below it; the length of the teacher's
            cosine schedule), ``masking`` (:class:`UncertaintyMasking`
            arguments) and ``teacher`` (:class:`EMATeacher` schedule:
            ``momentum``, ``end_momentum``, ``schedule``, ``param_groups``,
            ``eval_mode``).
        test_cfg (dict): As :class:`ToCoSegmentor`, plus ``network``:
            'student' (default) or 'teacher' predicts.
        data_preprocessor (dict): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
    """
    DEFAULT_TRAIN_CFG = dict(
        ToCoSegmentor.DEFAULT_TRAIN_CFG,
        # FSR's gate: `(n_iter + 1) <= 2000` -> off, so on from 0-based
        # iteration 2000 itself (gate_rule 'from').
        seg_start_iter=2000,
        gate_rule='from',
        fsr_iters=20000,
        masking=dict(
            form='code',
            mask_ratio=0.4,
            low_thr=0.2,
            high_thr=0.7,
            block_size=None,
            rounding=None,
            random_iters=None),
        teacher=dict(
            momentum=0.9995,
            end_momentum=1.0,
            schedule='cosine',
            param_groups=None,
            eval_mode=False))
    DEFAULT_TEST_CFG = dict(ToCoSegmentor.DEFAULT_TEST_CFG, network='student')

    def __init__(self,
                 network: ConfigType,
                 loss_fsr_class: ConfigType = dict(type='FSRClassLoss'),
                 loss_fsr_patch: ConfigType = dict(type='FSRPatchLoss'),
                 loss_ptc: ConfigType = dict(type='PTCLoss', loss_weight=0.2),
                 loss_seg: ConfigType = dict(
                     type='BgFgSegLoss', loss_weight=0.1),
                 loss_energy: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            network=network,
            loss_ptc=loss_ptc,
            loss_seg=loss_seg,
            loss_energy=loss_energy,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if self.test_cfg.network not in TEST_NETWORKS:
            raise ValueError(f'test_cfg.network must be one of '
                             f'{TEST_NETWORKS}, got {self.test_cfg.network!r}')
        backbone = self.network.backbone
        if self.network.proj_head is None or not getattr(
                backbone, 'with_mask_token', False):
            raise ValueError('FSR needs network.proj_head (a DINOHead) and a '
                             'WSSSViT backbone with with_mask_token=True')
        cfg = self.train_cfg
        self.loss_fsr_class = MODELS.build(loss_fsr_class)
        self.loss_fsr_patch = MODELS.build(loss_fsr_patch)
        self.masking = UncertaintyMasking(**cfg.masking)
        teacher_cfg = {
            k: v
            for k, v in cfg.teacher.items() if k in TEACHER_KEYS
        }
        self.teacher = EMATeacher(
            self.network, max_iters=cfg.fsr_iters, **teacher_cfg)
        # Iteration of the teacher's last update (see the class docstring).
        self.register_buffer('teacher_iter', torch.tensor(-1))

    # Teacher -----------------------------------------------------------
    @torch.no_grad()
    def update_teacher(self) -> None:
        """Bring the teacher to the current iteration: synchronise it with
        the student the first time, then once per iteration apply the EMA
        step of the previous iteration's momentum."""
        it = current_iter()
        if not bool(self.teacher.synced):
            self.teacher.sync(self.network)
        elif it != int(self.teacher_iter) and it > 0:
            self.teacher.update(self.network, iteration=it - 1)
        self.teacher_iter.fill_(it)

    def inference_network(self) -> ToCoNetwork:
        """The student, or the EMA teacher with ``test_cfg.network``."""
        if self.test_cfg.network == 'teacher':
            return self.teacher.module
        return self.network

    # Training ----------------------------------------------------------
    def view2_mask(self, view2: Tensor, cls_label: Tensor,
                   token_grid) -> Tensor:
        """(B, h*w) bool block mask of view 2 (random phase: no CAM)."""
        if self.masking.is_random():
            return self.masking(
                None, token_grid, batch_size=view2.shape[0]).to(view2.device)
        _, aux_cam2 = self.training_cams(self.network, view2)
        return self.masking(aux_cam2, token_grid, cls_label)

    def loss(self, inputs: Tensor,
             data_samples: SampleList) -> Dict[str, Tensor]:
        cfg = self.train_cfg
        network = self.network
        self.update_teacher()
        B = inputs.shape[0]
        cls_label = self.cls_labels(data_samples, inputs)
        img_box = self.img_boxes(data_samples)
        (view2, ) = self.extra_views(data_samples, inputs, 1,
                                     'FSR\'s second global view')
        if view2.shape != inputs.shape:
            raise ValueError(f'FSR\'s two views must have the same size, got '
                             f'{tuple(inputs.shape)} and {tuple(view2.shape)}')
        patch = network.backbone.patch_size
        grid = (inputs.shape[-2] // patch, inputs.shape[-1] // patch)
        mask2 = self.view2_mask(view2, cls_label, grid)
        mask = torch.cat([torch.zeros_like(mask2), mask2])

        both = torch.cat([inputs, view2])
        feats_both = network.extract_feat(both, mask=mask)
        proj = network.project_tokens(feats_both)  # (2B, 1 + N, K)
        feats = tuple(f[:B] for f in feats_both)  # view 1
        with torch.no_grad():
            teacher_proj = self.teacher.module.project_tokens(
                self.teacher(both))

        losses = network.cls_losses(feats, data_samples)
        cam, aux_cam = self.training_cams(network, inputs)
        high_thr = self.label_threshold(cls_label)
        losses[self.loss_ptc.loss_name] = self.gated(
            cfg.ptc_start_iter, lambda: self.ptc_loss(feats[
                0], aux_cam, cls_label, img_box, high_thr), feats[0])

        on = current_iter() < cfg.fsr_iters
        zero = proj.sum() * 0.
        losses[self.loss_fsr_class.loss_name] = self.loss_fsr_class(
            proj[B:, 0], teacher_proj[:B, 0]) if on else zero
        losses[self.loss_fsr_patch.loss_name] = self.loss_fsr_patch(
            proj[B:, 1:], teacher_proj[B:, 1:], mask2) if on else zero

        seg_logits = network.decode_head(feats)
        if not self.gate_open(cfg.seg_start_iter):
            losses[self.loss_seg.loss_name] = seg_logits.sum() * 0.
            return losses
        label = self.refine_label(
            self.images_01(inputs), cam, aux_cam, cls_label, img_box, high_thr)
        losses[self.loss_seg.loss_name] = self.loss_seg(seg_logits, label)
        if self.loss_energy is not None:
            losses[self.loss_energy.loss_name] = self.energy_loss(
                inputs, seg_logits, label, img_box)
        return losses

    def extra_repr(self) -> Optional[str]:
        return (f'fsr_iters={self.train_cfg.fsr_iters}, '
                f'test network={self.test_cfg.network!r}')
