# AGEN ablation on the toy set, Table 1's BASELINE row (paper: Baseline =
# branches A and B only; OA = AGM-4; SC = AGM-4 with a CoAM; MA = AGM-3/4/5;
# the full model adds the accumulated CoAMs): agm_stages=(),
# coam_stages=(); everything else as agen_toy.py.
_base_ = './agen_r18-tiny_1xb16-3k_toy-96x96.py'
model = dict(agm_stages=(), coam_stages=())
