"""The served model in ONNX Runtime: the shipped graphs (`core.onnx_graph`), no torch.

A Base model is one graph (aligned faces -> embedding and its own Grad-CAM++ map); a Heatmap model runs its
Base source's graph, then its own on the faces plus the source's map. Grad-CAM++ is in closed form inside
the graphs, so a pass is forward only. `face_vectors` is the serving side of `core.vectors.face_vectors`
(flip test-time augmentation: the faces and their mirrors in one batch, embeddings summed; the heatmap
vector), in numpy; `tests/test_vectors.py` holds the two to the same numbers, because the calibration is
fitted on evaluation's vectors and applied to these.
"""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from ...core.formats import (
    EMBEDDING,
    EXPLANATION,
    FACES_INPUT,
    GRAPH_FORMAT,
    GRAPH_METADATA,
    HEATMAP_INPUT,
    HEATMAP_VECTOR_SIZE,
    heatmap_output,
)
from ...core.weights import WeightsError, onnx_file


def session_options(threads: int) -> ort.SessionOptions:
    """`threads` intra-op threads (the worker's share of the cores), every graph optimisation (NCHWc
    layouts are about 30% faster here than the portable ones), no idle spinning between requests."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class Graph:
    """One shipped model's ONNX Runtime session and the config stored in its file."""

    def __init__(self, path: Path, threads: int):
        self.path = path
        self.session = ort.InferenceSession(
            str(path), session_options(threads), providers=["CPUExecutionProvider"]
        )
        meta = self.session.get_modelmeta().custom_metadata_map
        if GRAPH_METADATA not in meta:
            raise WeightsError(f"{path.name} is not an ai-server model graph")
        facts = json.loads(meta[GRAPH_METADATA])
        if facts["graph_format"] != GRAPH_FORMAT:
            raise WeightsError(
                f"{path.name}: graph format {facts['graph_format']}, this server runs {GRAPH_FORMAT}; "
                "re-export the manifest with `ai-server export-onnx`"
            )
        self.config = facts["config"]
        self.outputs = {o.name for o in self.session.get_outputs()}

    def run(self, names: list[str], **inputs: np.ndarray) -> list[np.ndarray]:
        return self.session.run(names, inputs)


@dataclass
class Output:
    embedding: np.ndarray  # (B, D) not normalised
    source_embedding: np.ndarray | None  # the heatmap source's (Base model's) embedding
    heatmap: np.ndarray | None  # the 4th channel the model read (B, 1, S, S)
    explanation: np.ndarray  # the model's own Grad-CAM++ map (B, 1, S, S)


class ServedModel:
    """A manifest model as ONNX Runtime graphs: `run(faces)` gives what `core.recognizer.Recognizer.run`
    gives, from aligned uint8 faces (B, 112, 112, 3).

    With `threads` > 1 a batch is split into that many parts, each run through both graphs on a thread of
    its own, and the graphs themselves run single-threaded: these small networks are a hundred short ops
    each, and waking a second thread for every op (no spinning, so idle workers do not burn a core) costs
    more than it gains, while a face and its mirror on two cores take the time of one."""

    def __init__(self, weights_dir: Path | None, manifest: dict, name: str, threads: int = 1):
        entry = manifest["models"][name]
        self.name, self.entry = name, entry
        self.graph = Graph(onnx_file(weights_dir, manifest, name), 1)
        self.parts = max(1, threads)
        self._pool = ThreadPoolExecutor(self.parts - 1, "graphs") if self.parts > 1 else None
        self.source: Graph | None = None
        self.source_output = None
        if source := entry.get("heatmap_source"):
            self.source = Graph(onnx_file(weights_dir, manifest, source), 1)
            if self.graph.config["heatmap"]["sha256"] != manifest["models"][source]["sha256"]:
                raise WeightsError(f"{name}: its graph was made with another {source} than the manifest's")
            self.source_output = heatmap_output(entry["cam_target"])
            if self.source_output not in self.source.outputs:
                raise WeightsError(f"{source}: its graph has no {self.source_output} for {name}")

    def run(self, faces: np.ndarray, seconds: dict | None = None) -> Output:
        """Embedding, own map and (Heatmap models) the source's embedding and map; `seconds` receives the
        time of the heatmap (source graph) and the embedding (own graph) stage of the first part."""
        parts = np.array_split(faces, min(self.parts, len(faces))) if len(faces) else [faces]
        later = [self._pool.submit(self._run_part, part) for part in parts[1:]]  # none when not split
        outputs = [self._run_part(parts[0], seconds)] + [f.result() for f in later]
        if len(outputs) == 1:
            return outputs[0]
        joined = {}
        for name in Output.__dataclass_fields__:
            values = [getattr(o, name) for o in outputs]
            joined[name] = None if values[0] is None else np.concatenate(values)
        return Output(**joined)

    def _run_part(self, faces: np.ndarray, seconds: dict | None = None) -> Output:
        started = time.perf_counter()
        source_embedding = heatmap = None
        feeds = {FACES_INPUT: faces}
        if self.source is not None:
            source_embedding, heatmap = self.source.run([EMBEDDING, self.source_output], **feeds)
            feeds[HEATMAP_INPUT] = heatmap
        middle = time.perf_counter()
        embedding, explanation = self.graph.run([EMBEDDING, EXPLANATION], **feeds)
        if seconds is not None:
            seconds["heatmap"] = middle - started
            seconds["embed"] = time.perf_counter() - middle
        return Output(embedding, source_embedding, heatmap, explanation)


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows to unit length, as torch's F.normalize (eps 1e-12)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass
class FaceVectors:
    embedding: np.ndarray  # (n, D) L2-normalised; with flip, of the face + its mirror
    embedding_noflip: np.ndarray  # (n, D) L2-normalised, the face alone
    source_embedding: np.ndarray | None  # the heatmap source's, pooled the same way (Heatmap models)
    explanation: np.ndarray  # (n, S, S) the model's own map of each face
    seconds: dict = field(default_factory=dict)  # heatmap and embed stage times

    def heatmap_vector(self) -> np.ndarray:
        """(n, 128*128) L2-normalised: the paper's served vector (bilinear, half-pixel: as torch)."""
        size = (HEATMAP_VECTOR_SIZE, HEATMAP_VECTOR_SIZE)
        small = [cv2.resize(m, size, interpolation=cv2.INTER_LINEAR) for m in self.explanation]
        return normalise(np.stack(small).reshape(len(small), -1))


def face_vectors(model: ServedModel, faces: np.ndarray, flip: bool = True) -> FaceVectors:
    """Aligned faces, uint8 RGB (n, H, W, 3) -> their vectors, in one pass of the graphs."""
    n = len(faces)
    batch = np.concatenate([faces, faces[:, :, ::-1]]) if flip else np.ascontiguousarray(faces)
    seconds: dict[str, float] = {}
    out = model.run(batch, seconds)

    def pooled(emb: np.ndarray) -> np.ndarray:
        return normalise(emb[:n] + emb[n:] if flip else emb)

    return FaceVectors(
        embedding=pooled(out.embedding),
        embedding_noflip=normalise(out.embedding[:n]),
        source_embedding=pooled(out.source_embedding) if out.source_embedding is not None else None,
        explanation=out.explanation[:n, 0],
        seconds=seconds,
    )
