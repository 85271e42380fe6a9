"""In-process controllers of the sandbox: what kube-controller-manager does in a real cluster.

Each controller reacts to store events through the same `Cluster` verbs clients use, so every
change it makes is visible to watches exactly as a real controller's would be.
"""
