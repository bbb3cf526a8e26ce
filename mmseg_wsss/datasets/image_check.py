# Copyright (c) OpenMMLab. All rights reserved.
"""An up-front decode check of image files.

A damaged image is otherwise found only when the pipeline first reads it,
which may be hours into a run and before any checkpoint. A truncated JPEG
keeps a valid header, so opening a file (or ``PIL.Image.verify``) is not
enough: every file is *decoded*.

Each file is decoded with OpenCV, the decoder of the training pipeline
(mmcv's ``LoadImageFromFile`` decodes with ``cv2.imdecode`` by default), at
1/8 of its size (``cv2.IMREAD_REDUCED_COLOR_8``: libjpeg scales a JPEG in
the DCT domain, so it still entropy-decodes all of the compressed data and
fails on a truncated file, while skipping most of the inverse DCT and colour
work; other formats are decoded in full and then reduced). A file that fails
is decoded again with PIL, with ``LOAD_TRUNCATED_IMAGES`` forced off, only
to say why ('truncated', 'not an image', ...).

What the training pipeline does with such files: ``cv2.imdecode`` returns
``None`` for a truncated JPEG or PNG and mmcv stops the run with ``failed
to load image``. (``cv2.imread`` on the path would instead return the image
with the missing rows filled grey and print only a libjpeg warning.) Bytes
damaged *inside* the compressed data, with the length intact, decode without
error in every decoder and cannot be found this way.
"""
import hashlib
import multiprocessing
import os
import os.path as osp
import secrets
import sys
import tempfile
import warnings
from contextlib import contextmanager
from typing import Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

#: Paths listed in the error message; all of them go to a file when more.
MAX_LISTED = 10


class CorruptImageError(OSError):
    """Images that cannot be decoded.

    Attributes:
        bad (list[tuple[str, str]]): Every bad file and its reason.
        log_file (str, optional): The file listing all of them, if written.
    """

    def __init__(self,
                 message: str,
                 bad: List[Tuple[str, str]],
                 log_file: Optional[str] = None) -> None:
        super().__init__(message)
        self.bad = bad
        self.log_file = log_file

    def __str__(self) -> str:
        return self.args[0]


@contextmanager
def _no_truncated_images() -> Iterator[None]:
    """PIL must fail on truncated files while checking."""
    old = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old


def _pil_reason(path: str) -> Optional[str]:
    """Why PIL cannot decode ``path`` (None if it can)."""
    try:
        with _no_truncated_images(), warnings.catch_warnings():
            # EXIF/ICC warnings are not decode errors.
            warnings.simplefilter('ignore')
            with Image.open(path) as im:
                if im.format == 'JPEG':  # DCT-domain 1/8 decode
                    im.draft(im.mode,
                             (max(1, im.width // 8), max(1, im.height // 8)))
                im.load()
    except UnidentifiedImageError:
        return 'not an image (unknown format)'
    except Exception as e:  # noqa: BLE001  (any decoder error is a reason)
        msg = str(e)
        if 'truncated' in msg.lower():
            return f'truncated ({msg})'
        return f'cannot be decoded ({type(e).__name__}: {msg})'
    return None


def decode_error(path: str) -> Optional[str]:
    """Decode one image file; return why it is bad, or None if it is good.

    Args:
        path (str): Image file.

    Returns:
        str | None: A short reason ('truncated (...)', 'empty file (0
        bytes)', 'not an image (unknown format)', ...) or None when the
        whole file decodes.
    """
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        return 'missing'
    except OSError as e:
        return f'not readable ({e.strerror or e})'
    if buf.size == 0:
        return 'empty file (0 bytes)'
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_REDUCED_COLOR_8)
    except cv2.error as e:
        img, cv_msg = None, str(e).strip().splitlines()[-1]
    else:
        cv_msg = ''
    if img is not None:
        return None
    reason = _pil_reason(path)
    if reason is None:  # PIL reads it, OpenCV (the pipeline's) does not
        reason = ('OpenCV, the decoder of the training pipeline, cannot '
                  'decode it' + (f' ({cv_msg})' if cv_msg else ''))
    return reason


def _check_chunk(
        chunk: Tuple[int, Sequence[str]]) -> Tuple[int, List[Tuple[int, str]]]:
    """Worker: (index of the first path, paths) -> (count, [(index,
    reason)])."""
    start, paths = chunk
    bad = []
    for i, path in enumerate(paths):
        reason = decode_error(path)
        if reason is not None:
            bad.append((start + i, reason))
    return len(paths), bad


def _chunks(paths: Sequence[str], size: int):
    for start in range(0, len(paths), size):
        yield start, list(paths[start:start + size])


def find_bad_images(paths: Sequence[str],
                    workers: int = 2,
                    progress: bool = True,
                    file=None) -> List[Tuple[str, str]]:
    """Decode every image and return the ones that fail.

    Args:
        paths (Sequence[str]): Image files.
        workers (int): Worker processes. 0 or 1 decode in this process (as
            does a daemon process, which may not start a pool).
            Defaults to 2.
        progress (bool): Show mmengine's progress bar. Defaults to True.
        file (file-like, optional): Where the progress bar goes.
            Defaults to ``sys.stdout``.

    Returns:
        list[tuple[str, str]]: ``(path, reason)`` of every bad file, in the
        order of ``paths``.
    """
    paths = list(paths)
    if not paths:
        return []
    if multiprocessing.current_process().daemon:
        workers = 0
    # Chunks amortise the inter-process traffic; ~8 per worker keep the
    # load balanced and the progress bar moving.
    size = max(1, min(256, len(paths) // (max(workers, 1) * 8) or 1))
    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(paths), file=file or sys.stdout)
    found = []

    def collect(results):
        for count, bad in results:
            found.extend(bad)
            if bar is not None:
                bar.update(count)

    if workers <= 1:
        collect(_check_chunk(c) for c in _chunks(paths, size))
    else:
        with multiprocessing.Pool(min(workers, len(paths))) as pool:
            collect(pool.imap_unordered(_check_chunk, _chunks(paths, size)))
    if bar is not None:
        bar.file.write('\n')
        bar.file.flush()
    return [(paths[i], reason) for i, reason in sorted(found)]


def default_log_file(source: str = '') -> str:
    """A file in the temporary folder for the full list of bad images, the
    same for every process that checks the same ``source``."""
    tag = hashlib.sha1(osp.abspath(source).encode()).hexdigest()[:8]
    return osp.join(tempfile.gettempdir(), f'mmseg_wsss_bad_images_{tag}.txt')


def _write_list(path: str, bad: List[Tuple[str, str]]) -> None:
    """Write ``path<TAB>reason`` lines atomically (ranks may write the same
    file at once), with the usual permissions (0666 less the umask)."""
    dirname = osp.dirname(osp.abspath(path))
    os.makedirs(dirname, exist_ok=True)
    tmp = f'{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, 'w') as f:
            f.writelines(f'{p}\t{reason}\n' for p, reason in bad)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def bad_images_error(bad: List[Tuple[str, str]],
                     total: int,
                     source: str = '',
                     log_file: Optional[str] = None,
                     max_listed: int = MAX_LISTED,
                     hint: str = '') -> CorruptImageError:
    """The error naming the bad images (the first ``max_listed`` in the
    message, all of them in ``log_file`` when there are more).

    Args:
        bad (list[tuple[str, str]]): ``(path, reason)`` pairs, not empty.
        total (int): How many images were checked.
        source (str): What was checked (e.g. the split file), for the
            message. Defaults to ''.
        log_file (str, optional): Where to write the full list when it is
            longer than ``max_listed``. Defaults to
            :func:`default_log_file` of ``source``.
        max_listed (int): Paths named in the message. Defaults to 10.
        hint (str): Appended to the message (how to fix or skip).

    Returns:
        CorruptImageError: The error (raise it).
    """
    written = None
    if len(bad) > max_listed:
        written = log_file or default_log_file(source)
        try:
            _write_list(written, bad)
        except OSError as e:
            hint = (f'(The full list could not be written to {written}: '
                    f'{e}.) ' + hint)
            written = None
    where = f' listed in {source}' if source else ''
    lines = [
        f'{len(bad)} of {total} image(s){where} cannot be decoded '
        '(damaged, truncated or not an image):'
    ]
    lines += [f'  {path}: {reason}' for path, reason in bad[:max_listed]]
    if len(bad) > max_listed:
        more = f'  ... and {len(bad) - max_listed} more'
        lines.append(more + (
            f'; all {len(bad)} are listed in {written}' if written else ''))
    lines.append('Replace these files (e.g. extract or download them again) '
                 'or remove their names from the list. ' + hint)
    return CorruptImageError('\n'.join(lines).rstrip(), bad, written)


def check_images(paths: Sequence[str],
                 workers: int = 2,
                 progress: bool = True,
                 source: str = '',
                 log_file: Optional[str] = None,
                 max_listed: int = MAX_LISTED) -> None:
    """Decode every image; raise one error naming every bad file.

    Args:
        paths (Sequence[str]): Image files.
        workers (int): Worker processes (0 or 1: this process).
            Defaults to 2.
        progress (bool): Show a progress bar. Defaults to True.
        source (str): What the paths come from, for the message.
        log_file (str, optional): File for the full list when more than
            ``max_listed`` files are bad (default: a file in the temporary
            folder, named in the message).
        max_listed (int): Paths named in the message. Defaults to 10.

    Raises:
        CorruptImageError: Some files cannot be decoded.
    """
    paths = list(paths)
    bad = find_bad_images(paths, workers=workers, progress=progress)
    if bad:
        raise bad_images_error(
            bad, len(paths), source, log_file=log_file, max_listed=max_listed)


__all__ = [
    'CorruptImageError', 'decode_error', 'find_bad_images', 'check_images',
    'bad_images_error', 'default_log_file'
]
