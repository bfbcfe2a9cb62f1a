"""Metrics against hand-computed truths."""

import math

import numpy as np
import pytest

from ganfactory.errors import GanfactoryError
from ganfactory.metrics import confusion_matrix, iou_from_confusion, object_size, pck, pck_counts, segmentation_scores


def test_confusion_matrix_by_hand():
    truth = np.array([[[0, 0, 1], [1, 2, 2]]])
    pred = np.array([[[0, 1, 1], [1, 2, 0]]])
    # (true, pred) pairs: (0,0) (0,1) (1,1) (1,1) (2,2) (2,0)
    expected = np.array([[1, 1, 0],
                         [0, 2, 0],
                         [1, 0, 1]])
    np.testing.assert_array_equal(confusion_matrix(pred, truth, 3), expected)


def test_dataset_level_iou_is_not_the_mean_of_image_ious():
    # image A: class 1 perfect on 1 pixel; image B: class 1 covers 3 pixels, prediction finds 1 of them
    truth = np.array([[[1, 0, 0, 0]], [[1, 1, 1, 0]]])
    pred = np.array([[[1, 0, 0, 0]], [[1, 0, 0, 0]]])
    cm = confusion_matrix(pred, truth, 2)
    np.testing.assert_array_equal(cm, [[4, 0], [2, 2]])
    iou = iou_from_confusion(cm)
    # class 0: tp 4, fp 2, fn 0 -> 4/6; class 1: tp 2, fp 0, fn 2 -> 2/4
    np.testing.assert_allclose(iou, [4 / 6, 2 / 4])
    scores = segmentation_scores(cm, ["background", "part"])
    assert scores["miou"] == pytest.approx((4 / 6 + 0.5) / 2)
    assert scores["pixel_accuracy"] == pytest.approx(6 / 8)
    assert scores["per_class_iou"] == {"background": pytest.approx(4 / 6), "part": pytest.approx(0.5)}
    # per-image averaging would give class 1: (1 + 1/3) / 2 = 2/3, not 1/2
    assert scores["per_class_iou"]["part"] != pytest.approx(2 / 3)


def test_absent_class_is_undefined_not_zero():
    cm = confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 3)
    scores = segmentation_scores(cm, ["bg", "a", "b"])
    assert scores["per_class_iou"]["b"] is None
    assert scores["miou"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    # a class predicted but never true has IoU 0 and counts
    cm = confusion_matrix(np.array([2, 1]), np.array([0, 1]), 3)
    assert iou_from_confusion(cm)[2] == 0.0


def test_confusion_rejects_bad_input():
    with pytest.raises(GanfactoryError, match="0..2"):
        confusion_matrix(np.array([3]), np.array([0]), 3)
    with pytest.raises(GanfactoryError, match="truth"):
        confusion_matrix(np.zeros((2, 2), int), np.zeros((2, 3), int), 3)


def test_object_size_is_the_longer_box_side():
    label = np.zeros((10, 10), np.uint8)
    label[2:5, 3:9] = 4          # rows 2..4 (3), columns 3..8 (6)
    assert object_size(label) == 6
    label[9, 0] = 1
    assert object_size(label) == 9      # rows 2..9 (8), columns 0..8 (9)
    assert object_size(np.zeros((4, 4))) == 0


def test_pck_by_hand():
    size = 20.0                           # threshold 2 px
    truth = np.array([[10, 10, 1],        # predicted 1.9 px away: correct
                      [5, 5, 1],          # 2.5 px away: wrong
                      [0, 0, 0],          # hidden: not scored even though the prediction is far
                      [np.nan, np.nan, 0],  # unavailable: not scored
                      [3, 3, 1]])         # no prediction (NaN): wrong
    pred = np.array([[11.9, 10, 1], [7.5, 5, 1], [50, 50, 1], [1, 1, 1], [np.nan, np.nan, 0]])
    correct, scored = pck_counts(pred, truth, size)
    np.testing.assert_array_equal(correct, [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(scored, [1, 1, 0, 0, 1])
    # exactly at the threshold counts
    c, _ = pck_counts(np.array([[12.0, 10.0]]), np.array([[10.0, 10.0, 1]]), size)
    assert c.tolist() == [1]

    second_truth = np.array([[1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 0], [1, 1, 1]])
    second_pred = np.array([[1, 1], [1, 4], [1, 1.5], [9, 9], [1, 1]])     # size 10: threshold 1 px
    result = pck([pred, second_pred], [truth, second_truth], [size, 10.0])
    # scored: 3 + 4 = 7; correct: 1 + 3 (points 0, 2, 4) = 4
    assert (result["correct"], result["scored"]) == (4, 7)
    assert result["pck"] == pytest.approx(4 / 7)
    per = result["per_keypoint"]
    assert per[0] == 1.0 and per[1] == 0.0 and per[2] == 1.0 and per[4] == 0.5
    assert math.isnan(per[3])               # never scored (unavailable, then hidden)
