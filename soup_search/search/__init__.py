"""The soup search: Ray Tune + Optuna over expert choice and soup weights."""
