"""The sandbox: a local cluster that speaks the Kubernetes API on 127.0.0.1.

It is a separate world from the product: it emulates Kubernetes (and, later, istiod), so it
never imports product code and product code never imports it. Only the CLI starts it.
"""
