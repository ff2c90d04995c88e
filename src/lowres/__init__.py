"""lowres: train image classifiers from scratch on small images, write submissions."""

__version__ = "0.1.0"
