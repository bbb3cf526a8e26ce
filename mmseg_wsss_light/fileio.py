# Copyright (c) OpenMMLab. All rights reserved.
"""Atomic file writes: a reader sees the old file or the new one, whole."""
import os
import os.path as osp
import secrets


def write_bytes_atomic(path: str, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    The temporary file (``.NAME.PID.RANDOM.tmp`` beside ``path``) is
    created with mode 0o666 minus the process umask (``mkstemp`` would give
    0o600), flushed (and, with ``fsync``, synced to disk) and renamed over
    ``path`` (atomic on one file system). On any failure it is removed and
    the error propagates; ``path`` is then as it was.

    Args:
        path (str): The file to write (its folder is created if missing).
        data (bytes): The whole content.
        fsync (bool): Sync the file before the rename (survives a power
            loss, not only a crash). Defaults to True.

    Raises:
        OSError: The folder cannot be created or written.
    """
    dirname = osp.dirname(osp.abspath(path))
    os.makedirs(dirname, exist_ok=True)
    while True:
        tmp = osp.join(
            dirname, f'.{osp.basename(path)}.{os.getpid()}.'
            f'{secrets.token_hex(4)}.tmp')
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def write_text_atomic(path: str, text: str) -> None:
    """:func:`write_bytes_atomic` of ``text`` encoded as UTF-8, synced."""
    write_bytes_atomic(path, text.encode('utf-8'))


__all__ = ['write_bytes_atomic', 'write_text_atomic']
