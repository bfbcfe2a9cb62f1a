"""Downstream networks trained on any LabeledDataset (real or synthesized), and their scores on real data."""

from ganfactory.downstream.data import AugmentConfig, SegmentationData, load_data, remap_table
from ganfactory.downstream.models import ARCHITECTURES, ModelSpec, create_model
from ganfactory.downstream.train import Segmenter, TrainConfig, TrainResult, evaluate, load_segmenter, train_network
from ganfactory.metrics import confusion_matrix, iou_from_confusion, object_size, pck, segmentation_scores

__all__ = ["ARCHITECTURES", "AugmentConfig", "ModelSpec", "SegmentationData", "Segmenter", "TrainConfig",
           "TrainResult", "confusion_matrix", "create_model", "evaluate", "iou_from_confusion", "load_data",
           "load_segmenter", "object_size", "pck", "remap_table", "segmentation_scores", "train_network"]
