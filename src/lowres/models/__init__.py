"""The model zoo: `build_model(cfg, num_classes)` and friends. See zoo.py for the rules."""
from lowres.models.zoo import build_model, count_flops, count_parameters, describe_models, model_names

__all__ = ["build_model", "model_names", "describe_models", "count_parameters", "count_flops"]
