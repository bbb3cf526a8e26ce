# Copyright (c) OpenMMLab. All rights reserved.
from .checkpoint import (checkpoint_problem, find_resume_checkpoint,
                         build_test_runner, load_checkpoint_strict,
                         resolve_resume, save_checkpoint_atomic,
                         write_text_atomic)
from .wsss_test_loop import WSSSTestLoop

__all__ = [
    'WSSSTestLoop', 'checkpoint_problem', 'find_resume_checkpoint',
    'build_test_runner', 'load_checkpoint_strict', 'resolve_resume',
    'save_checkpoint_atomic', 'write_text_atomic'
]
