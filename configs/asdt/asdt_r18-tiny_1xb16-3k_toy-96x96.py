# ASDT on the toy set: RRM's toy config with the student head. The signal
# keeps its share of training: period 150 of 20,000 VOC iterations is under
# one toy iteration's worth, so the toy period is 30 iterations (100 periods
# in 3,000, as VOC's 133 in 20,000) with tau 5 (T_h 6), the alternation
# from iteration 150 (1,000 / 20,000 of the run).
_base_ = '../rrm/rrm_r18-tiny_1xb16-3k_toy-96x96.py'
model = dict(
    type='ASDTSegmentor',
    loss_seg=dict(type='BgFgSegLoss', loss_weight=1.0),
    loss_energy=dict(loss_weight=0.5),
    train_cfg=dict(
        alternation=dict(form='paper', period=30, tau=5, start_iter=150),
        student_crf=dict(preset='rrm', xy_scale=96 / 448, workers=0)),
    test_cfg=dict(output='fused'))
