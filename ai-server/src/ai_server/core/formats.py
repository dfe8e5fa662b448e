"""What a shipped model graph and a face's vectors are, for the torch code that writes and evaluates them
and the torch-free service that runs them: names, sizes and the graph format's version."""

GRAPH_FORMAT = 1  # raised when a graph's inputs or outputs change; the service refuses other formats
GRAPH_METADATA = "ai_server"  # the metadata key holding the model's config (JSON)
FACES_INPUT, HEATMAP_INPUT = "faces", "heatmap"  # uint8 (B, H, W, 3) RGB; float (B, 1, S, S) in [0, 1]
EMBEDDING, EXPLANATION = "embedding", "explanation"  # (B, D) not normalised; own map (B, 1, S, S)
OWN_TARGET = "embedding_norm"  # the Grad-CAM++ target of a model's own map (its explanation)
HEAD_OUTPUT = "arcface.weight"  # the ArcFace head, a constant output that nothing computes
ALIGNED_SIZE = 112  # the aligner's crops, the graph's faces input
HEATMAP_VECTOR_SIZE = 128  # the paper's heatmap vector: the own map at 128x128, flattened


def heatmap_output(target: str) -> str:
    """The output of a Base model's graph holding its map for `target`, as its Heatmap models read it."""
    return EXPLANATION if target == OWN_TARGET else f"heatmap_{target}"
