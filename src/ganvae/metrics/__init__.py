"""Metrics: the MNIST feature classifier, sample-quality metrics, likelihood bounds, evaluation."""
