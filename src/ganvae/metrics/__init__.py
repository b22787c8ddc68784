"""Metrics: the feature networks (the shipped MNIST classifier, classifiers and rotation predictors trained for other
data, pytorch-fid's Inception-v3 from the user's weights), their validation, sample-quality metrics, likelihood
bounds, evaluation."""
