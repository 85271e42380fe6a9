"""The sandbox's Kubernetes API server: HTTP, storage, watch, patching, printing, discovery."""
