"""Evaluation of frozen self-supervised features.

I-JEPA (Assran et al., 2023, "Self-Supervised Learning from Images with a Joint-Embedding Predictive
Architecture") is judged by how useful its *frozen* target-encoder features are downstream. This package
provides the cheap, device-agnostic measurements the sweep lab reports after (or during) a run:

* :mod:`~jepa_core.evaluate.features`: frozen features of an encoder, batch by batch, in eval mode;
* :mod:`~jepa_core.evaluate.probe`: a linear probe, multinomial logistic regression on standardized frozen
  features fitted full-batch with L-BFGS (the classic frozen-feature protocol, made cheap enough to run
  every few epochs), and the same probe on raw pixels, the baseline a learned encoder has to beat;
* :mod:`~jepa_core.evaluate.knn`: a weighted k-nearest-neighbour classifier on cosine similarity (Wu et al.,
  2018, "Unsupervised Feature Learning via Non-Parametric Instance Discrimination"; the same protocol DINO,
  Caron et al. 2021, uses);
* :mod:`~jepa_core.evaluate.collapse`: RankMe (Garrido et al., 2023, "RankMe: Assessing the Downstream
  Performance of Pretrained Self-Supervised Representations by Their Rank"), a label-free effective rank of
  the embeddings, and the per-dimension std of L2-normalized features, a label-free collapse indicator;
* :mod:`~jepa_core.evaluate.result`: all of them on one set of features, as the trainer's metrics.

Everything is plain torch, runs on whatever device the features live on, and needs no gradients into the
encoder. Import the names below from ``jepa_core.evaluate``.
"""

from __future__ import annotations

from jepa_core.evaluate.collapse import collapse_warning, feature_std, rankme
from jepa_core.evaluate.features import extract_features
from jepa_core.evaluate.knn import knn_accuracy
from jepa_core.evaluate.probe import LinearProbe, linear_probe, raw_pixel_probe
from jepa_core.evaluate.result import EvalResult, evaluate_features

__all__ = [
    "EvalResult",
    "LinearProbe",
    "collapse_warning",
    "evaluate_features",
    "extract_features",
    "feature_std",
    "knn_accuracy",
    "linear_probe",
    "rankme",
    "raw_pixel_probe",
]
