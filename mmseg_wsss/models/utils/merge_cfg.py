# Copyright (c) OpenMMLab. All rights reserved.
from typing import Mapping, Optional

from mmengine.config import ConfigDict


def merge_cfg(defaults: Mapping,
              cfg: Optional[Mapping],
              name: str = 'cfg') -> ConfigDict:
    """``cfg`` merged into ``defaults``, nested, unknown keys rejected.

    A key of ``cfg`` must exist in ``defaults``; a dict value merges into a
    dict default key by key (recursively), any other value replaces the
    default. A default of None takes any value as is (an optional block
    whose keys its own consumer checks, e.g. ``crf``).

    Args:
        defaults (Mapping): Every allowed key with its default.
        cfg (Mapping, optional): The user's settings.
        name (str): Dotted name used in errors, e.g. 'train_cfg'.

    Returns:
        ConfigDict: The merged settings (``defaults`` is not modified).

    Raises:
        KeyError: For a key of ``cfg`` not in ``defaults``, naming the key
            and the allowed ones (a misspelt ``bkg_thrr`` is not silently
            ignored).
    """
    merged = ConfigDict(dict(defaults))
    for key, value in (cfg or {}).items():
        if key not in defaults:
            raise KeyError(f'{name}.{key} is not a setting of this model; '
                           f'allowed: {", ".join(sorted(defaults))}')
        default = defaults[key]
        if isinstance(default, Mapping) and isinstance(value, Mapping):
            merged[key] = merge_cfg(default, value, f'{name}.{key}')
        else:
            merged[key] = value
    return merged
