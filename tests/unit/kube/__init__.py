"""Unit tests of the Kubernetes client layer's pure helpers, meshcanary.kube."""
