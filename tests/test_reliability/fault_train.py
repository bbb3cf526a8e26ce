# Copyright (c) OpenMMLab. All rights reserved.
"""tools/train.py with a fault injected into the N-th checkpoint write.

Usage: python fault_train.py {enospc,kill} N TRAIN_ARGS...

The N-th checkpoint file written by mmengine's local file backend gets half
of its bytes, then the write fails with ENOSPC ("No space left on device")
or the process is killed with SIGKILL, as a full disk or a job scheduler
would do in the middle of a save.
"""
import errno
import os
import os.path as osp
import runpy
import signal
import sys

from mmengine.fileio.backends.local_backend import LocalBackend

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def main() -> None:
    mode, fail_at = sys.argv[1], int(sys.argv[2])
    assert mode in ('enospc', 'kill'), mode
    put = LocalBackend.put
    writes = []

    def faulty_put(self, obj, filepath):
        if '.pth' not in str(filepath):
            return put(self, obj, filepath)
        writes.append(filepath)
        if len(writes) < fail_at:
            return put(self, obj, filepath)
        with open(filepath, 'wb') as f:  # the part that made it to disk
            f.write(obj[:len(obj) // 2])
        if mode == 'kill':
            os.kill(os.getpid(), signal.SIGKILL)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filepath)

    LocalBackend.put = faulty_put
    sys.argv = sys.argv[3:]
    sys.path.insert(0, REPO_ROOT)
    runpy.run_path(sys.argv[0], run_name='__main__')


if __name__ == '__main__':
    main()
