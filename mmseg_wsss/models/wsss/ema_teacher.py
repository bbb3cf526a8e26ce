# Copyright (c) OpenMMLab. All rights reserved.
"""An exponential-moving-average teacher for self-distillation.

One piece serves the three forms of the ToCo family
(official_code_notes 1.6 and 3; the FSR paper, Implementation Details):

* ToCo CTC: the student is the CTC head only (the encoder is shared and
  its features detached); ``m = 0.9`` constant; updated *before* the
  teacher's forward, every iteration.
* FSR code (default form of FSR): the student is the whole network;
  ``m`` cosine from 0.9995 to 1.0 over ``max_iters``; updated after each
  optimiser step (``momentum_schedule[n_iter]``).
* FSR paper: the encoder synchronised (``m = 0``), the projector cosine
  from 0.996 to 1.0; updated after each optimiser step.

Examples::

    # ToCo: teacher = 0.9 * teacher + 0.1 * student, then forward.
    teacher = EMATeacher(network.ctc_head, momentum=0.9)
    teacher.update(network.ctc_head)
    target = teacher(global_cls_tokens.detach())

    # FSR code.
    teacher = EMATeacher(network, momentum=0.9995, end_momentum=1.0,
                         schedule='cosine', max_iters=20000)

    # FSR paper: the encoder synchronised, the rest 0.996 -> 1.0.
    teacher = EMATeacher(
        network, momentum=0.996, end_momentum=1.0, schedule='cosine',
        max_iters=20000,
        param_groups={'backbone.': dict(momentum=0.0,
                                         schedule='constant')})
"""
import copy
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from .distillation_schedules import ema_momentum
from .schedule import current_iter

_SCHEDULE_KEYS = ('momentum', 'end_momentum', 'schedule')


class EMATeacher(nn.Module):
    """A frozen copy of a student updated by an exponential moving average.

    ``update(student)`` applies, per parameter,
    ``teacher = m * teacher + (1 - m) * student`` (computed in this order,
    as both official codes do) with ``m`` from :func:`ema_momentum` at the
    current iteration; ``m = 0`` copies the student, ``m = 1`` keeps the
    teacher, both exactly.

    Why not mmengine's ``ExponentialMovingAverage`` / ``BaseAveragedModel``
    (whose ``momentum`` is ``1 - m``)?

    * its first ``update_parameters`` *copies* the student instead of
      averaging (FSR averages from the first step: the teacher starts as
      the pretrained student and its first update already blends);
    * it asserts ``0 < momentum < 1``: neither the synchronised encoder of
      the FSR paper (``m = 0``) nor the end of the cosine schedule
      (``m = 1``) can be expressed (and it warns for ``m < 0.5``);
    * one momentum for the whole model: the FSR paper needs one per part;
    * its ``lerp_`` rounds differently from the codes'
      ``t * m + s * (1 - m)``.

    A small module avoids all four and keeps the teacher a plain submodule:
    its parameters and buffers are in the owner's ``state_dict`` under
    ``<name>.module.*`` (plus ``<name>.synced``), so a checkpoint restores
    the teacher bit-exactly.

    Other choices (the notes are silent):

    * Student parameters that do not require grad (a frozen ``pos_embed``,
      the weight-norm ``g`` of :class:`DINOHead`) are *copied*, not
      averaged: they never change, and averaging equal values can still
      move them by an ulp per step.
    * Buffers are copied from the student at every update
      (``sync_buffers=True``, mmengine's convention); the ToCo-family
      networks have none that matter.
    * The teacher follows the owner's train/eval mode (``eval_mode=False``):
      FSR's teacher is built with ``drop_path_rate=0.1`` and never put in
      eval mode, so its drop path is active during training.
      ``eval_mode=True`` keeps it deterministic.
    * The teacher must be synchronised with the student once its weights
      are final (after ``init_weights`` loads a pretrained backbone): call
      :meth:`sync`, or let the first :meth:`update` do it (ToCo's
      update-before-forward). A forward before that raises, so a randomly
      initialised teacher can never be used silently.

    Args:
        student (nn.Module): The module to copy (deep copy; the student is
            not stored).
        momentum (float): ``m`` (teacher weight) at iteration 0, in [0, 1].
            Defaults to 0.9 (ToCo).
        end_momentum (float): ``m`` at ``max_iters`` for 'cosine'. Defaults
            to 1.0.
        schedule (str): 'constant' or 'cosine'. Defaults to 'constant'.
        max_iters (int): Length of the cosine schedule. Defaults to 0.
        param_groups (dict[str, dict], optional): Parameter-name prefixes
            (in the student's ``named_parameters``) mapped to overrides of
            ``momentum`` / ``end_momentum`` / ``schedule``; the longest
            matching prefix wins. E.g. the FSR paper's
            ``{'backbone.': dict(momentum=0., schedule='constant')}``.
        sync_buffers (bool): Copy the student's buffers at every update.
            Defaults to True.
        eval_mode (bool): Keep the teacher in eval mode. Defaults to False
            (FSR's code).
    """

    def __init__(self,
                 student: nn.Module,
                 momentum: float = 0.9,
                 end_momentum: float = 1.0,
                 schedule: str = 'constant',
                 max_iters: int = 0,
                 param_groups: Optional[Dict[str, dict]] = None,
                 sync_buffers: bool = True,
                 eval_mode: bool = False) -> None:
        super().__init__()
        self.module = copy.deepcopy(student)
        self.module.requires_grad_(False)
        # A buffer, so a resumed checkpoint does not re-synchronise.
        self.register_buffer('synced', torch.tensor(False))
        self.max_iters = max_iters
        self.sync_buffers = sync_buffers
        self.eval_mode = eval_mode
        self.default_group = dict(
            momentum=momentum, end_momentum=end_momentum, schedule=schedule)
        self.param_groups = {}
        for prefix, override in (param_groups or {}).items():
            unknown = set(override) - set(_SCHEDULE_KEYS)
            if unknown:
                raise KeyError(f'param_groups[{prefix!r}] has unknown keys '
                               f'{sorted(unknown)}; allowed: '
                               f'{list(_SCHEDULE_KEYS)}')
            self.param_groups[prefix] = dict(self.default_group, **override)
        names = [n for n, _ in self.module.named_parameters()]
        for prefix in self.param_groups:
            if not any(n.startswith(prefix) for n in names):
                raise KeyError(f'param_groups prefix {prefix!r} matches no '
                               'parameter of the student')
        # Validate every schedule once (raises on a bad value).
        for group in self._groups().values():
            self._momentum(group, 0)
        if eval_mode:
            self.module.eval()

    # Schedules -----------------------------------------------------------
    def _groups(self) -> Dict[str, dict]:
        """Prefix -> schedule; '' is the default group."""
        return {'': self.default_group, **self.param_groups}

    def _momentum(self, group: dict, iteration: int) -> float:
        return ema_momentum(
            iteration,
            start=group['momentum'],
            end=group['end_momentum'],
            max_iters=self.max_iters,
            schedule=group['schedule'])

    def _group_of(self, name: str) -> str:
        """Longest prefix of ``param_groups`` matching ``name`` ('' if
        none)."""
        matches = [p for p in self.param_groups if name.startswith(p)]
        return max(matches, key=len) if matches else ''

    def momenta(self, iteration: Optional[int] = None) -> Dict[str, float]:
        """``m`` of every group at ``iteration`` (default: the current one).

        Returns:
            dict[str, float]: Prefix -> momentum; '' is the default group.
        """
        it = current_iter() if iteration is None else iteration
        return {p: self._momentum(g, it) for p, g in self._groups().items()}

    # Updates -------------------------------------------------------------
    def _pairs(self,
               student: nn.Module) -> List[Tuple[str, Tensor, Tensor, bool]]:
        """(name, teacher param, student param, trainable) by name."""
        teacher_params = dict(self.module.named_parameters())
        student_params = dict(student.named_parameters())
        if teacher_params.keys() != student_params.keys():
            missing = sorted(teacher_params.keys() - student_params.keys())
            extra = sorted(student_params.keys() - teacher_params.keys())
            raise KeyError('the student does not match the teacher: '
                           f'missing {missing[:5]}, unexpected {extra[:5]}')
        return [(n, t, student_params[n], student_params[n].requires_grad)
                for n, t in teacher_params.items()]

    @torch.no_grad()
    def sync(self, student: nn.Module) -> None:
        """Copy the student's parameters and buffers into the teacher (the
        official codes' initialisation ``teacher <- student``)."""
        for _, t, s, _ in self._pairs(student):
            t.copy_(s.detach())
        self._copy_buffers(student)
        self.synced.fill_(True)

    @torch.no_grad()
    def _copy_buffers(self, student: nn.Module) -> None:
        teacher_buffers = dict(self.module.named_buffers())
        for name, buf in student.named_buffers():
            if name in teacher_buffers:
                teacher_buffers[name].copy_(buf)

    @torch.no_grad()
    def update(self,
               student: nn.Module,
               iteration: Optional[int] = None) -> Dict[str, float]:
        """One EMA step towards ``student``.

        If the teacher was never synchronised, it is first copied from the
        student (so ToCo's update-before-forward starts from the student).

        Args:
            student (nn.Module): The module the teacher was copied from
                (same parameter names), e.g. the unwrapped network.
            iteration (int, optional): 0-based iteration whose momentum is
                used; default: ``current_iter()``.

        Returns:
            dict[str, float]: The momentum used per group (for logging).
        """
        if not bool(self.synced):
            self.sync(student)
        momenta = self.momenta(iteration)
        by_group: Dict[str, Tuple[List[Tensor], List[Tensor]]] = {
            p: ([], [])
            for p in momenta
        }
        for name, t, s, trainable in self._pairs(student):
            if not trainable or not t.dtype.is_floating_point:
                t.copy_(s.detach())
                continue
            ts, ss = by_group[self._group_of(name)]
            ts.append(t)
            ss.append(s.detach().to(t.device))
        for prefix, (ts, ss) in by_group.items():
            if not ts:
                continue
            m = momenta[prefix]
            if m == 1.:
                continue  # the teacher stays exactly as it is
            if m == 0.:
                torch._foreach_copy_(ts, ss)
                continue
            # ``t * m + s * (1 - m)``: the order of both official codes.
            torch._foreach_mul_(ts, m)
            torch._foreach_add_(ts, torch._foreach_mul(ss, 1. - m))
        if self.sync_buffers:
            self._copy_buffers(student)
        return momenta

    # Forward -------------------------------------------------------------
    def forward(self, *args, **kwargs):
        """Run the teacher without gradient (outputs are detached).

        Raises:
            RuntimeError: The teacher was never synchronised with the
                student (see :meth:`sync`).
        """
        if not bool(self.synced):
            raise RuntimeError(
                'EMATeacher used before it was synchronised with the '
                'student: call teacher.sync(student) once the student\'s '
                'weights are initialised (or teacher.update(student) first)')
        with torch.no_grad():
            return self.module(*args, **kwargs)

    def train(self, mode: bool = True) -> 'EMATeacher':
        """Follow ``mode`` unless ``eval_mode`` keeps the teacher in eval."""
        super().train(mode)
        if self.eval_mode:
            self.module.eval()
        return self

    def extra_repr(self) -> str:
        groups = ', '.join(f'{p or "default"}: {g}'
                           for p, g in self._groups().items())
        return f'max_iters={self.max_iters}, groups=({groups})'
