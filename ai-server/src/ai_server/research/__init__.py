"""Research: data, augmentation, training, distillation, evaluation, the report and shipping weights.

Training-only; the serving image does not install its dependencies ([research] extra).
"""
