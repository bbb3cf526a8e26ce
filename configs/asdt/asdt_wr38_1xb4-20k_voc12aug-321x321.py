# ASDT (TIP 2023) on RRM: the seg teacher is RRM's head, the student a
# second head of the same architecture on the same conv6 features; each
# head's loss weighs 0.5 as the code (`(celoss + dloss) * 0.5`).
_base_ = '../rrm/rrm_wr38_1xb4-20k_voc12aug-321x321.py'
model = dict(
    type='ASDTSegmentor',
    loss_seg=dict(type='BgFgSegLoss', loss_weight=1.0),  # 0.5 x (bg + fg)
    loss_energy=dict(loss_weight=0.5),
    train_cfg=dict(
        # Paper Sec. 3.2: period T 150, tau = T / T_h 5 (6 best in Fig. 5);
        # the student learns from B^st from iteration 1,001 (the code's
        # `iter > 1000`). form='released': both heads learn from RRM's label.
        alternation=dict(form='paper', period=150, tau=5, start_iter=1001),
        # B^st = CRF(P^st): the code's crf_inference_inf (3/3, 83/5/4).
        student_crf=dict(preset='rrm', workers=2)),
    # Eq. 1: max of the two softmax maps, then the CRF (83/5/4).
    test_cfg=dict(output='fused'))
