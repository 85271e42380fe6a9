"""The one place that talks to a Kubernetes API (through lightkube, async).

`client` connects as kubectl would (kubeconfig, `$KUBECONFIG`, context, in-cluster), `resources`
names every resource type the product uses (built-ins, dict twins, our CRD, Istio kinds),
`listing` pages through big LISTs and waits on watches, `apply` does server-side apply, pruning,
merge patches and deletes, `retry` owns the backoff policy and `errors` the typed, one-line
errors. Nothing outside this package imports lightkube or its HTTP library, so the other layers
see plain dicts, resource classes from `resources`, and `errors.KubeError`.
"""
