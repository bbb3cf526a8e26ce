# Copyright (c) OpenMMLab. All rights reserved.
from abc import abstractmethod
from typing import (Callable, Dict, List, Mapping, Optional, Sequence, Tuple,
                    Union)

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.utils import OptConfigType, OptMultiConfig, OptSampleList
from mmseg.utils import SampleList
from torch import Tensor

from ..postprocess import CRFPostProcessor
from ..utils import denormalize_images, merge_cfg, normalize_images
from ..wsss import (CLS_SOURCES, IGNORE_INDEX, at_iteration, is_active,
                    mask_outside_box, stack_cls_labels)


class WSSSSegmentor(BaseSegmentor):
    """Base of the WSSS segmentors: what every method shares.

    A method segmentor composes one or more *networks* (backbone, heads;
    their forward passes) and owns the training logic: gates, thresholds,
    schedules and losses, in its ``train_cfg``. This base gives it:

    - ``train_cfg`` / ``test_cfg`` merged into the class's
      ``DEFAULT_TRAIN_CFG`` / ``DEFAULT_TEST_CFG`` one way (nested, unknown
      keys are an error naming the allowed ones: :func:`merge_cfg`);
    - the iteration gates (:meth:`gate_open`, :meth:`gated`) with the
      method's comparison (``train_cfg.gate_rule``, see
      :data:`GATE_RULES`), a gated-off loss kept in the DDP graph;
    - ``predict`` / ``encode_decode`` (the method implements
      :meth:`inference`, its test-time fusion) and the dense-CRF
      post-processing step of ``test_cfg.crf``;
    - the public :meth:`pseudo_labels`: the training labels of the
      segmentation loss at a given iteration (the method implements
      :meth:`_pseudo_labels`).

    Args:
        train_cfg (dict, optional): Training settings (see the subclass).
        test_cfg (dict, optional): Test settings (see the subclass).
        data_preprocessor (dict, optional): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
    """
    DEFAULT_TRAIN_CFG: Mapping = dict()
    # ``val``: test settings that in-training validation uses instead (see
    # :meth:`val_step`); tools/test.py never reads it.
    DEFAULT_TEST_CFG: Mapping = dict(mode='whole', crf=None, val=None)
    # Panel titles of the keys of visual_maps().
    VISUAL_MAP_TITLES: Mapping[str, str] = dict(
        cam='CAM',
        aux_cam='aux CAM',
        label_raw='label',
        label_refined='refined label')
    # Checkpoint key prefixes that moved since e6331ef: {old: new}.
    LEGACY_KEY_PREFIXES: Mapping[str, str] = dict()

    def __init__(self,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.train_cfg = merge_cfg(self.DEFAULT_TRAIN_CFG, train_cfg,
                                   'train_cfg')
        self.test_cfg = merge_cfg(self.DEFAULT_TEST_CFG, test_cfg, 'test_cfg')
        cls_source = self.test_cfg.get('cls_source', 'gt')
        if cls_source not in CLS_SOURCES:
            raise ValueError(f'test_cfg.cls_source must be one of '
                             f'{CLS_SOURCES}, got {cls_source!r}')
        self.crf_postprocessor = CRFPostProcessor.build(
            self.test_cfg.get('crf'))
        val = self.test_cfg.get('val') or {}
        allowed = set(self.test_cfg) - {'val', 'crf', 'mode'}
        if set(val) - allowed:
            raise KeyError(f'test_cfg.val overrides test settings; unknown '
                           f'keys {sorted(set(val) - allowed)}, allowed: '
                           f'{sorted(allowed)}')
        if self.LEGACY_KEY_PREFIXES:
            self._register_load_state_dict_pre_hook(self._upgrade_legacy_keys)

    # Validation --------------------------------------------------------
    def val_step(self, data: Union[dict, tuple, list]) -> list:
        """In-training validation, with ``test_cfg.val``'s settings.

        ``test_cfg.val`` (e.g. ``dict(scales=(1.0, ), flip=False)``, the
        authors' cheap protocol: single scale, no flip) replaces those test
        settings while the Runner validates; ``tools/test.py`` (``test_step``)
        keeps the full protocol of every published number.
        """
        val = self.test_cfg.get('val')
        if not val:
            return super().val_step(data)
        saved = {k: self.test_cfg[k] for k in val}
        self.test_cfg.update(val)
        try:
            return super().val_step(data)
        finally:
            self.test_cfg.update(saved)

    # Checkpoints of earlier layouts ------------------------------------
    def _upgrade_legacy_keys(self, state_dict: dict, prefix: str,
                             *args) -> None:
        """A load_state_dict pre-hook: :meth:`upgrade_state_dict`."""
        self.upgrade_state_dict(state_dict, prefix)

    @classmethod
    def upgrade_state_dict(cls, state_dict: dict, prefix: str = '') -> dict:
        """Rename the keys of an e6331ef checkpoint to this layout, in place
        (keys already in the new layout stay); returns ``state_dict``."""
        for key in list(state_dict):
            if not key.startswith(prefix):
                continue
            new = cls.upgrade_key(key[len(prefix):])
            if new is not None and prefix + new not in state_dict:
                state_dict[prefix + new] = state_dict.pop(key)
        return state_dict

    @classmethod
    def upgrade_key(cls, key: str) -> Optional[str]:
        """The current name of an e6331ef state-dict key (None: unmoved)."""
        for old, new in cls.LEGACY_KEY_PREFIXES.items():
            if key.startswith(old):
                return new + key[len(old):]
        return None

    @classmethod
    def legacy_key(cls, key: str) -> str:
        """The e6331ef name of a current state-dict key."""
        for old, new in cls.LEGACY_KEY_PREFIXES.items():
            if key.startswith(new):
                return old + key[len(new):]
        return key

    # Gates -----------------------------------------------------------
    def gate_open(self, start_iter: Optional[int]) -> bool:
        """Whether a term gated at ``start_iter`` is on now (None: always),
        compared as the method's code does (``train_cfg.gate_rule``)."""
        return is_active(start_iter, self.train_cfg.get('gate_rule', 'from'))

    def gated(self, start_iter: Optional[int], loss_fn: Callable[[], Tensor],
              graph: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """``loss_fn()`` when the gate is open, else ``0 * sum(graph)``.

        The zero keeps the parameters behind ``graph`` in the autograd graph,
        so DDP sees every parameter used in every iteration.
        """
        if self.gate_open(start_iter):
            return loss_fn()
        graph = [graph] if isinstance(graph, Tensor) else graph
        return sum(g.sum() for g in graph) * 0.

    # Shared inputs ---------------------------------------------------
    @staticmethod
    def cls_labels(data_samples: SampleList, like: Tensor) -> Tensor:
        """(B, C) image-level labels of a batch, as ``like``'s dtype."""
        return stack_cls_labels(data_samples).to(like)

    @staticmethod
    def img_boxes(data_samples: SampleList) -> List:
        """Per image ``[h0, h1, w0, w1]`` valid box of a padded crop."""
        return [s.metainfo.get('img_box') for s in data_samples]

    def extra_views(self, data_samples: SampleList, like: Tensor,
                    num_views: int, needed_by: str) -> List[Tensor]:
        """The first ``num_views`` extra views the pipeline packed beside
        each image (``data_sample.views``, see :class:`AddView`), as
        normalised network inputs.

        Args:
            data_samples (list[SegDataSample]): The batch's samples.
            like (Tensor): The batch inputs (device).
            num_views (int): Views the caller needs.
            needed_by (str): What needs them, for the error message.

        Returns:
            list[Tensor]: ``num_views`` tensors (B, 3, H, W).

        Raises:
            ValueError: A sample has fewer views than ``num_views``.
        """
        views = [s.get('views') for s in data_samples]
        have = min(0 if v is None else v.shape[0] for v in views)
        if have < num_views:
            raise ValueError(
                f'{needed_by} needs {num_views} extra view(s) of each '
                f'training image, but a sample has {have}: add AddView '
                'steps to the training pipeline (see the method\'s config '
                'and its README), and pack them with PackWSSSInputs')
        stacked = torch.stack([v[:num_views] for v in views]).to(like.device)
        out = []
        for i in range(num_views):
            view = normalize_images(stacked[:, i], self.data_preprocessor)
            # Padded at the bottom/right like the batch inputs (the
            # preprocessor's ``size``), with its pad value.
            pad_h = like.shape[-2] - view.shape[-2]
            pad_w = like.shape[-1] - view.shape[-1]
            if pad_h > 0 or pad_w > 0:
                view = torch.nn.functional.pad(
                    view, (0, max(pad_w, 0), 0, max(pad_h, 0)),
                    value=float(self.data_preprocessor.pad_val))
            out.append(view)
        return out

    def energy_loss(self, inputs: Tensor, seg_logits: Tensor, label: Tensor,
                    img_box: List) -> Tensor:
        """Dense energy (rloss) of the upsampled softmax on the image
        (``self.loss_energy``, a :class:`DenseEnergyLoss`; ToCo, FSR, RRM,
        ASDT), inside the valid box of each crop.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised crops.
            seg_logits (Tensor): (B, K, h, w) segmentation logits, upsampled
                to (H, W) (bilinear) before the softmax.
            label (Tensor): (B, H, W) pseudo label (255: unlabelled).
            img_box (list): Per image ``[h0, h1, w0, w1]`` or None.

        Returns:
            Tensor: The weighted energy.
        """
        H, W = inputs.shape[-2:]
        probs = F.interpolate(
            seg_logits,
            size=(H, W),
            mode='bilinear',
            align_corners=self.align_corners).softmax(dim=1)
        roi = mask_outside_box(
            torch.ones_like(label), img_box, ignore_index=0).to(inputs)
        return self.loss_energy(
            self.images_01(inputs) * 255., probs, roi, label)

    def images_01(self, inputs: Tensor) -> Tensor:
        """Normalised inputs back to RGB in [0, 1] (PAR, PAMR, energy)."""
        return denormalize_images(inputs, self.data_preprocessor)

    def crf_images(self,
                   inputs: Tensor,
                   size: Optional[Tuple[int, int]] = None) -> List[np.ndarray]:
        """(B, 3, H, W) normalised crops as (H, W, 3) uint8 RGB arrays: the
        images of a dense CRF inside training (truncated to uint8, as the
        RRM and SEC code do).

        Args:
            inputs (Tensor): (B, 3, H, W) normalised crops.
            size (tuple, optional): (h, w) to resize them to first
                (bilinear), for a CRF at the feature resolution.
        """
        images = self.images_01(inputs)
        if size is not None and tuple(size) != tuple(images.shape[-2:]):
            images = F.interpolate(
                images, size=size, mode='bilinear', align_corners=False)
        images = (images * 255.).clamp(0, 255).byte()
        return list(images.permute(0, 2, 3, 1).cpu().numpy())

    # Pseudo labels ---------------------------------------------------
    @torch.no_grad()
    def pseudo_labels(
            self,
            inputs: Tensor,
            data_samples: SampleList,
            iteration: Optional[int] = None) -> Union[Tensor, List[Tensor]]:
        """The training labels the segmentation loss uses at ``iteration``.

        Gates, dynamic thresholds, ignore bands and the padding box are those
        of ``iteration`` (None: the current one); a method whose
        segmentation loss is off then returns labels that are all ignore.
        Exporting labels for a second stage is something else: the
        multi-scale ``predict()`` with ``test_cfg.cls_source='gt'``
        (``tools/test.py --pseudo-labels``).

        Args:
            inputs (Tensor): (B, 3, H, W) normalised training crops.
            data_samples (list[SegDataSample]): With ``gt_cls_label`` and
                ``img_box`` (when padded).
            iteration (int, optional): 0-based training iteration.

        Returns:
            Tensor | list[Tensor]: (B, H, W) int64 labels (0 background,
            class ids, 255 ignore); for two-network methods a list with the
            labels each network produces.
        """
        with at_iteration(iteration):
            return self._pseudo_labels(inputs, data_samples)

    @abstractmethod
    def _pseudo_labels(
            self, inputs: Tensor,
            data_samples: SampleList) -> Union[Tensor, List[Tensor]]:
        """:meth:`pseudo_labels` at the current iteration."""

    @staticmethod
    def ignore_labels(inputs: Tensor) -> Tensor:
        """(B, H, W) labels that are all ignore (no supervision)."""
        B, _, H, W = inputs.shape
        return inputs.new_full((B, H, W), IGNORE_INDEX, dtype=torch.long)

    # Pictures --------------------------------------------------------
    @torch.no_grad()
    def visual_maps(self,
                    inputs: Tensor,
                    data_samples: SampleList,
                    iteration: Optional[int] = None,
                    **kwargs) -> Dict[str, Tensor]:
        """The maps that show how the method labels a batch, for pictures
        (``tools/analysis_tools/visualize_cams.py``,
        :class:`CAMVisualizationHook`).

        Computed with the method's own steps (CAMs at the training
        settings, thresholds, PAR / PAMR / CRF) under the gates and dynamic
        thresholds of ``iteration`` (None: the current one), and whether or
        not the segmentation loss is on then: the labels are what the
        method's rule gives, for the image-level ground-truth classes.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised images.
            data_samples (list[SegDataSample]): With ``gt_cls_label`` (and
                ``img_box`` when padded).
            iteration (int, optional): 0-based training iteration.
            **kwargs: Method options (DuPL: ``branch``).

        Returns:
            dict[str, Tensor]: Some of ``'cam'`` (B, C-1, H, W) in [0, 1]
            (the score map the labels come from; 1Stage: its masks),
            ``'aux_cam'`` (B, C-1, H, W) in [0, 1], and (B, H, W) int64
            label maps (0 background, class ids, 255 ignore)
            ``'label_raw'`` (before refinement), ``'label_refined'`` (after
            it) and ``'label_filtered'`` (DuPL's noise filtering). The
            titles are in :attr:`VISUAL_MAP_TITLES`.
        """
        with at_iteration(iteration):
            return self._visual_maps(inputs, data_samples, **kwargs)

    def _visual_maps(self, inputs: Tensor,
                     data_samples: SampleList) -> Dict[str, Tensor]:
        """:meth:`visual_maps` at the current iteration."""
        raise NotImplementedError(
            f'{type(self).__name__} does not implement visual_maps() (its '
            '_visual_maps)')

    # Inference -------------------------------------------------------
    @abstractmethod
    def inference(self,
                  inputs: Tensor,
                  data_samples: OptSampleList = None) -> Tensor:
        """(B, K, H, W) fused scores of the method's test-time pipeline."""

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Fused scores without data samples (no image labels)."""
        return self.inference(inputs)

    @torch.no_grad()
    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """Segmentation of a batch: ``seg_logits`` hold the fused scores,
        ``pred_sem_seg`` their argmax, refined by the dense CRF of
        ``test_cfg.crf`` when it is enabled."""
        scores, extra = self.predict_scores(inputs, data_samples)
        # postprocess_result writes into data_samples: the extra predictions
        # are taken before the main one overwrites them.
        extra_preds = {
            name: [
                s.pred_sem_seg
                for s in self.postprocess_result(value, data_samples)
            ]
            for name, value in extra.items()
        }
        samples = self.postprocess_result(scores, data_samples)
        for name, preds in extra_preds.items():
            for sample, pred in zip(samples, preds):
                sample.set_field(pred, name)
        return self.apply_crf(samples)

    def predict_scores(
            self,
            inputs: Tensor,
            data_samples: OptSampleList = None) -> Tuple[Tensor, Dict]:
        """The fused scores of :meth:`inference`, and named further scores
        whose argmax :meth:`predict` stores beside ``pred_sem_seg`` (none
        here; DuPL's validation of both networks adds its branches)."""
        return self.inference(inputs, data_samples), dict()

    def apply_crf(self, samples: SampleList) -> SampleList:
        """The CRF post-processing step (unless off, or deferred to the
        test loop, which runs it in parallel workers)."""
        crf = self.crf_postprocessor
        return samples if crf is None else crf.apply(samples)
