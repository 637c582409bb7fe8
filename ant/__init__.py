"""anGPT scaling-law suite: models, data, training, sweeps and scaling-law analysis."""

__version__ = "0.1.0"
