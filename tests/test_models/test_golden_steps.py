# Copyright (c) OpenMMLab. All rights reserved.
"""Behaviour is kept, provably: every toy method trains bit-identically to
the golden recorded on e6331ef (before the WSSS core redesign).

``tests/golden/golden_steps.py`` trains each toy config for 24 iterations
(every gate switched on by iteration 4) at batch 2 and one thread from
key-seeded weights; losses of every iteration and the final state dict must
match the record exactly. A deliberate behaviour change re-records the
golden in its own commit (``--record``) and says why.
"""
import json
import os.path as osp
import sys

import pytest

HERE = osp.dirname(__file__)
GOLDEN = osp.join(HERE, '..', 'golden', 'golden_steps.json')
sys.path.insert(0, osp.join(HERE, '..', 'golden'))
try:
    import golden_steps
finally:
    sys.path.pop(0)

# Records of this kind of CPU's kernels, if any (golden_steps.py).
GOLDEN = golden_steps.records_path(GOLDEN)
with open(GOLDEN) as f:
    RECORDS = json.load(f)


@pytest.mark.parametrize('case', sorted(golden_steps.CASES))
def test_training_steps_are_bit_identical_to_the_golden(
        case, toy_root, tmp_path):
    expected = RECORDS[case]
    got = golden_steps.run_case(case, toy_root, work_dir=str(tmp_path))
    assert got['init_sha256'] == expected['init_sha256'], \
        'the key-seeded start differs (a key mapping is missing?)'
    assert len(got['losses']) == len(expected['losses'])
    for it, (g, e) in enumerate(zip(got['losses'], expected['losses'])):
        assert g == e, f'iteration {it}: {g} != {e}'
    assert got['final_sha256'] == expected['final_sha256']


def test_golden_covers_every_gate():
    """The golden is no fingerprint of warm-up only: after iteration 4
    every gated term of every method is on (nonzero somewhere)."""
    for case, rec in RECORDS.items():
        late = rec['losses'][4:]
        assert len(late) == 20
        for key in late[-1]:
            assert any(float.fromhex(step[key]) != 0. for step in late), \
                (case, key)
