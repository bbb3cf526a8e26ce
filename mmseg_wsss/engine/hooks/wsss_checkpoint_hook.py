# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from mmseg_wsss.registry import HOOKS
from ..runner.checkpoint import save_checkpoint_atomic, write_text_atomic


@HOOKS.register_module()
class WSSSCheckpointHook(CheckpointHook):
    """mmengine's :class:`CheckpointHook` with fault-safe saving.

    Three changes, so that a kill or a full disk during a save loses
    nothing:

    - the checkpoint is written under a temporary name and renamed into
      place (:func:`save_checkpoint_atomic`): no half-written
      ``iter_N.pth`` is ever left;
    - the checkpoints beyond ``max_keep_ckpts`` are removed *after* the new
      one is on disk (mmengine removes the oldest first, so a failed save
      with ``max_keep_ckpts=1`` would leave no checkpoint at all);
    - ``last_checkpoint`` is written atomically too.

    Arguments are those of :class:`mmengine.hooks.CheckpointHook`.
    """

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            # keep_ckpt_ids is a deque with maxlen: pop explicitly, so the
            # file is removed (later) rather than forgotten.
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        save_checkpoint_atomic(
            runner,
            self.out_dir,
            ckpt_filename,
            file_client_args=self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)

        if not is_main_process():
            return
        write_text_atomic(
            osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        for old in outdated:
            path = self.file_backend.join_path(self.out_dir,
                                               self.filename_tmpl.format(old))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # deepspeed: directories
                self.file_backend.rmtree(path)
