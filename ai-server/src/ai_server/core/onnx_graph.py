"""A shipped model as one ONNX graph: what the service runs with ONNX Runtime, and the file research reads.

The graph takes aligned faces as they come out of the aligner, uint8 (B, H, W, 3) RGB, does the input
normalisation itself and returns the embedding and the model's own Grad-CAM++ map (embedding-norm target),
both from the forward pass (`cam.ClosedFormGradCAMPlusPlus`). A Heatmap model's graph also takes its
source's map (B, 1, S, S) as the 4th channel; a Base model's graph can add the map of another label-free
target its Heatmap models read (`heatmap_predicted_class`). The mirror of flip TTA is just more faces in the
batch. Weights are stored in float16 (cast to float32 once, when ONNX Runtime loads the graph), named as in
the model's state dict, so `read_onnx` gives torch exactly the weights the service runs; the ArcFace head
(training and closed-set evaluation only) is a constant output that nothing computes. The model's config is
in the metadata (`ai_server`).
"""

import io
import json
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
import torch
import torchvision.models.shufflenetv2 as shufflenetv2
from onnx import helper, numpy_helper
from torch import nn

from .cam import closed_form_applies, closed_form_coarse, upsample_map
from .formats import (
    ALIGNED_SIZE,
    EMBEDDING,
    EXPLANATION,
    FACES_INPUT,
    GRAPH_FORMAT,
    GRAPH_METADATA,
    HEAD_OUTPUT,
    HEATMAP_INPUT,
    OWN_TARGET,
    heatmap_output,
)
from .models import ArcFace, FaceNet, model_input

OPSET = 17
PREFIX = "model."  # initializer names: PREFIX + the FaceNet state-dict key


class ModelGraph(nn.Module):
    """faces uint8 (B, H, W, 3) [, heatmap (B, 1, S, S)] -> embedding (B, D), explanation (B, 1, S, S)
    [, the map of each extra target]; everything ONNX Runtime needs for one model, batch of any size."""

    def __init__(self, model: FaceNet, head: ArcFace, input_size: int, extra_targets: tuple[str, ...] = ()):
        super().__init__()
        if not closed_form_applies(model):
            raise ValueError("only heads with the closed-form Grad-CAM++ gradient export to ONNX")
        self.model, self.arcface, self.input_size = model, head, input_size
        self.extra_targets = tuple(t for t in extra_targets if t != OWN_TARGET)

    def forward(self, faces: torch.Tensor, heatmap: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        rgb = faces.permute(0, 3, 1, 2).to(torch.float32) / 255.0
        x = model_input(rgb, heatmap, self.input_size)
        activations = self.model.trunk(x)
        embedding = self.model.head(activations)
        size = x.shape[-2:]
        maps = [
            upsample_map(closed_form_coarse(self.model.head, activations, embedding, t, self.arcface), size)
            for t in (OWN_TARGET, *self.extra_targets)
        ]
        return (embedding, *maps)


def output_names(extra_targets: tuple[str, ...] = ()) -> list[str]:
    return [EMBEDDING, EXPLANATION, *(heatmap_output(t) for t in extra_targets if t != OWN_TARGET)]


def _split_shuffle(self, x: torch.Tensor) -> torch.Tensor:
    """torchvision's `InvertedResidual.forward` with its sizes as constants: the same tensors, but the
    traced graph has no Shape/Gather/Concat arithmetic on the batch size before every reshape."""
    if self.stride == 1:
        half = int(x.shape[1]) // 2
        x1, x2 = torch.split(x, [half, half], dim=1)
        out = torch.cat((x1, self.branch2(x2)), dim=1)
    else:
        out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
    _, channels, height, width = (int(d) for d in out.shape)
    out = out.reshape(-1, 2, channels // 2, height, width).transpose(1, 2)
    return out.reshape(-1, channels, height, width)


@contextmanager
def _static_sizes():
    """While tracing, ShuffleNetV2 blocks reshape with constant sizes (about 10% faster in ONNX Runtime)."""
    original = shufflenetv2.InvertedResidual.forward
    shufflenetv2.InvertedResidual.forward = _split_shuffle
    try:
        yield
    finally:
        shufflenetv2.InvertedResidual.forward = original


def _trace(graph: ModelGraph, heatmap_input: bool) -> onnx.ModelProto:
    size = graph.input_size
    faces = torch.zeros(2, ALIGNED_SIZE, ALIGNED_SIZE, 3, dtype=torch.uint8)
    args = (faces, torch.zeros(2, 1, size, size)) if heatmap_input else (faces,)
    inputs = [FACES_INPUT, HEATMAP_INPUT] if heatmap_input else [FACES_INPUT]
    outputs = output_names(graph.extra_targets)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), _static_sizes():  # no deprecation and int() notices of the tracer
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph.eval(),
            args,
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes={name: {0: "batch"} for name in inputs + outputs},
            do_constant_folding=False,  # keep every weight as its own named initializer,
            keep_initializers_as_inputs=True,  # even two that round to equal values (no deduplication)
            training=torch.onnx.TrainingMode.PRESERVE,  # no Conv+BN folding: ONNX Runtime fuses at load
        )
    proto = onnx.load_from_string(buffer.getvalue())
    real = [i for i in proto.graph.input if i.name in inputs]  # weights are constants, not inputs
    del proto.graph.input[:]
    proto.graph.input.extend(real)
    return proto


def _store_half(proto: onnx.ModelProto, names: set[str]) -> None:
    """The named weights as float16 initializers (names kept), each cast to float32 once in the graph."""
    graph = proto.graph
    casts = []
    for init in graph.initializer:
        if init.name in names:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name)
            init.CopyFrom(half)
            casts.append(
                helper.make_node("Cast", [init.name], [f"{init.name}/fp32"], to=onnx.TensorProto.FLOAT)
            )
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in names:
                node.input[i] = f"{name}/fp32"
    nodes = [*casts, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)


def _add_head(proto: onnx.ModelProto, head: ArcFace) -> None:
    """The ArcFace head as a constant float16 output: stored for research, computed by nothing."""
    weight = head.weight.detach().to(torch.float16).numpy()
    if HEAD_OUTPUT not in {init.name for init in proto.graph.initializer}:  # a predicted_class map uses it
        proto.graph.initializer.append(numpy_helper.from_array(weight, HEAD_OUTPUT))
    proto.graph.output.append(
        helper.make_tensor_value_info(HEAD_OUTPUT, onnx.TensorProto.FLOAT16, weight.shape)
    )


def export_onnx(
    path: str | os.PathLike,
    model: FaceNet,
    head: ArcFace,
    config: dict,
    extra_targets: tuple[str, ...] = (),
) -> dict:
    """Write the model's graph atomically; return what the manifest records of it (opset, format...)."""
    model, head = model.float().eval(), head.float().eval()
    heatmap_input = model.in_channels == 4
    graph = ModelGraph(model, head, config["input_size"], () if heatmap_input else extra_targets)
    proto = _trace(graph, heatmap_input)
    weights = {PREFIX + k for k, v in model.state_dict().items() if v.is_floating_point()}
    if missing := weights - {init.name for init in proto.graph.initializer}:
        raise ValueError(f"the exported graph lost weights: {sorted(missing)[:5]}")
    _store_half(proto, weights | {HEAD_OUTPUT})
    _add_head(proto, head)
    meta = {"graph_format": GRAPH_FORMAT, "config": config, "extra_targets": list(graph.extra_targets)}
    helper.set_model_props(proto, {GRAPH_METADATA: json.dumps(meta)})
    proto.producer_name, proto.producer_version = "ai-server", torch.__version__
    onnx.checker.check_model(proto, full_check=True)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(proto.SerializeToString())
    os.replace(tmp, path)
    return {
        "format": "onnx",
        "opset": OPSET,
        "graph_format": GRAPH_FORMAT,
        "inputs": [FACES_INPUT, HEATMAP_INPUT] if heatmap_input else [FACES_INPUT],
        "outputs": output_names(graph.extra_targets),
        "exporter": {"torch": torch.__version__, "onnx": onnx.__version__},
    }


def read_onnx(path: str | os.PathLike) -> dict:
    """{"config", "model", "head"} of a shipped graph, as `torch.load` gives them for a run's model file:
    the float16 weights exactly as stored (BatchNorm's unused batch counters are zero)."""
    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    if GRAPH_METADATA not in props:
        raise ValueError(f"{path} is not an ai-server model graph (no {GRAPH_METADATA!r} metadata)")
    meta = json.loads(props[GRAPH_METADATA])
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in proto.graph.initializer}
    state = {k.removeprefix(PREFIX): v for k, v in weights.items() if k.startswith(PREFIX)}
    for key in [k for k in state if k.endswith(".running_mean")]:
        state[key.removesuffix("running_mean") + "num_batches_tracked"] = torch.tensor(0)
    return {"config": meta["config"], "model": state, "head": {"weight": weights[HEAD_OUTPUT]}}
