"""Face search for missing persons: the research core (models, Grad-CAM++, data, evaluation)."""

__version__ = "0.1.0"
