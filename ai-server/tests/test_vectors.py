"""Serving and evaluation compute a face's vectors the same way (calibration is fitted on one, used by the
other), and the heatmap vector is the model's own map."""

import numpy as np
import torch

from ai_server.core.weights import load_manifest, load_recognizer
from ai_server.research.evaluate import open_set_vectors
from ai_server.serving.pipeline.engine import Engine


def test_the_server_and_the_evaluation_give_a_face_the_same_vectors(tiny_weights, faces):
    crops = faces[:6]
    engine = Engine(tiny_weights, "tiny-heatmap", max_batch=4)
    served = engine.vectors_many([c.permute(1, 2, 0).numpy() for c in crops], explain=True)
    manifest = load_manifest(tiny_weights)
    evaluated = open_set_vectors(load_recognizer(tiny_weights, "tiny-heatmap", manifest), crops)
    key = engine.default_space.key
    for i, v in enumerate(served):
        assert np.allclose(v.by_space[key], evaluated["embedding"][i].numpy(), atol=1e-5), i
    # the explanation the server returns is the map whose flattening evaluation scores
    own = torch.from_numpy(np.stack([v.explanation for v in served]))[:, None]
    small = torch.nn.functional.interpolate(own, size=128, mode="bilinear", align_corners=False)
    flat = torch.nn.functional.normalize(small.flatten(1), dim=1)
    assert torch.allclose(flat, evaluated["heatmap_vector"], atol=1e-5)
    # flip TTA is on: the face alone gives another vector
    assert not torch.allclose(evaluated["embedding"], evaluated["embedding_noflip"], atol=1e-3)
