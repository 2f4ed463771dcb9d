"""Rollout step labels: Monte Carlo estimates of each step prefix's value under a prover, as a chunked GPU job."""
