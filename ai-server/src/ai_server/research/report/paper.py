"""The paper's numbers (../shared/docs/paper.md) and the names of what we reproduce."""

BACKBONES = {"mobilenet": "MobileNetV3", "shufflenet": "ShuffleNetV2", "efficientnet": "EfficientNet-B0"}
KINDS = {
    "base": "Base",
    "heatmap": "Heatmap",
    "scratch": "Heatmap from scratch",
    "continued": "Base trained on",
}
SWEEPS = {
    "noise": ["noise_0.05", "noise_0.1", "noise_0.15", "noise_0.2"],
    "occlusion": ["occlusion_0.1", "occlusion_0.2", "occlusion_0.3", "occlusion_0.4"],
    "brightness": ["brightness_0.7", "brightness_0.85", "brightness_1.15", "brightness_1.3"],
}
TABLE1 = ["original", "noise_0.1", "occlusion_0.3", "brightness_0.7", "brightness_1.15"]
# Table 1 columns Original / Noise / Occlusion / Brightness.
PAPER_TABLE1 = {
    ("mobilenet", "base"): [0.7859, 0.2666, 0.6692, 0.7737],
    ("mobilenet", "heatmap"): [0.8163, 0.2120, 0.6852, 0.7998],
    ("shufflenet", "base"): [0.7001, 0.0567, 0.5089, 0.6853],
    ("shufflenet", "heatmap"): [0.7851, 0.0690, 0.6213, 0.7661],
    ("efficientnet", "base"): [0.8170, 0.2735, 0.6915, 0.8072],
    ("efficientnet", "heatmap"): [0.8218, 0.2715, 0.6863, 0.8046],
}
PAPER_TABLE2 = {  # Normal / Zero / Random / Shuffle
    ("mobilenet", "occlusion_0.3"): [0.2542, 0.2511, 0.2455, 0.2526],
    ("mobilenet", "brightness_1.15"): [0.3426, 0.3401, 0.3369, 0.3426],
    ("mobilenet", "noise_0.1"): [0.0494, 0.0478, 0.0493, 0.0487],
    ("efficientnet", "occlusion_0.3"): [0.1220, 0.1239, 0.1164, 0.1217],
    ("efficientnet", "brightness_1.15"): [0.1664, 0.1683, 0.1590, 0.1658],
    ("efficientnet", "noise_0.1"): [0.0772, 0.0783, 0.0761, 0.0772],
    ("shufflenet", "occlusion_0.3"): [0.0533, 0.0503, 0.0536, 0.0537],
    ("shufflenet", "brightness_1.15"): [0.0958, 0.0896, 0.0967, 0.0954],
    ("shufflenet", "noise_0.1"): [0.0301, 0.0283, 0.0316, 0.0303],
}
PAPER_LFW_AUC = {
    ("mobilenet", "heatmap"): 0.804,
    ("shufflenet", "heatmap"): 0.8372,
    ("efficientnet", "heatmap"): 0.809,
}
PAPER_EPOCH3_F1 = {("mobilenet", "base"): 0.6471, ("mobilenet", "heatmap"): 0.7830}
