"""Serving (ONNX Runtime graphs, no torch) and evaluation (torch, autograd Grad-CAM++) give a face the same
vectors: the calibration is fitted on evaluation's and applied to the server's. And the heatmap vector is
the model's own map."""

import numpy as np
import torch
import torch.nn.functional as F

from ai_server.core.recognizer import load_recognizer
from ai_server.core.vectors import face_vectors
from ai_server.core.weights import load_manifest
from ai_server.research.evaluate import open_set_vectors
from ai_server.serving.pipeline.engine import Engine


def _cosine(a, b) -> float:
    return float(F.cosine_similarity(torch.as_tensor(np.asarray(a)), torch.as_tensor(np.asarray(b))).min())


def test_the_server_and_the_evaluation_give_a_face_the_same_vectors(tiny_weights, faces):
    crops = faces[:6]
    engine = Engine(tiny_weights, "tiny-heatmap", max_batch=4)
    served = engine.vectors_many([c.permute(1, 2, 0).numpy() for c in crops], explain=True)
    manifest = load_manifest(tiny_weights)
    recognizer = load_recognizer(tiny_weights, "tiny-heatmap", manifest)
    evaluated = open_set_vectors(recognizer, crops)
    key = engine.default_space.key
    assert _cosine([v.by_space[key] for v in served], evaluated["embedding"]) >= 0.9999
    # the source's embedding, stored from the same pass, is the evaluation's Base model embedding
    torch_vectors = face_vectors(recognizer, crops.float() / 255, flip=True, explain=True)
    source = [v.by_space[engine.source_space.key] for v in served]
    assert _cosine(source, torch_vectors.source_embedding) >= 0.9999
    # the explanation the server returns is the model's own map, and its flattening is what evaluation scores
    own = np.stack([v.explanation for v in served])
    assert np.abs(own - torch_vectors.explanation[:, 0].numpy()).max() <= 1e-4
    small = F.interpolate(torch.from_numpy(own)[:, None], size=128, mode="bilinear", align_corners=False)
    flat = F.normalize(small.flatten(1), dim=1)
    assert torch.allclose(flat, evaluated["heatmap_vector"], atol=1e-4)
    # flip TTA is on: the face alone gives another vector
    assert not torch.allclose(evaluated["embedding"], evaluated["embedding_noflip"], atol=1e-3)


def test_the_served_heatmap_vector_is_the_evaluations(tiny_weights, faces):
    """AI_SERVER_VECTOR=heatmap_vector: the server's resize (OpenCV) and evaluation's (torch) agree."""
    crops = faces[6:10]
    engine = Engine(tiny_weights, "tiny-heatmap", vector="heatmap_vector")
    served = engine.vectors_many([c.permute(1, 2, 0).numpy() for c in crops])
    manifest = load_manifest(tiny_weights)
    evaluated = open_set_vectors(load_recognizer(tiny_weights, "tiny-heatmap", manifest), crops)
    got = np.stack([v.by_space[engine.default_space.key] for v in served])
    assert _cosine(got, evaluated["heatmap_vector"]) >= 0.9999
    assert np.abs(got - evaluated["heatmap_vector"].numpy()).max() <= 1e-4
