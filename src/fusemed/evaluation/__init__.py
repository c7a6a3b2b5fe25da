"""Evaluation: metrics overall and per missing-modality pattern."""
