"""The shared model code: networks, Grad-CAM++, a loaded model ready to embed, the shipped weights.

Imports neither `research` nor `serving`: both build on it.
"""
