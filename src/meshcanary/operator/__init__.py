"""The meshcanary operator: kopf wiring from cluster events to the `controlplane` engine.

Thin on purpose (ARCHITECTURE.md: "the operator and the CLI share one engine"): every decision
about an IstioControlPlane is a function in `meshcanary.controlplane` that a test can call.

- `handlers`: the reconcile daemon per IstioControlPlane, its wake-ups, the cleanup finalizer and
  the login from a kubeconfig;
- `admission`: the validating webhook that refuses deleting a control plane still in use, and
  the HTTPS server (certificates included) the API server calls;
- `runner`: options, kopf settings (peering, posting, persistence, watching) and `run`, which
  `meshcanary operator` calls.

Import modules, not names: `from meshcanary.operator import runner` then `runner.run(options)`.
"""
