"""The simulated istiod of each revision that "runs" in the sandbox.

No istiod binary runs here: a revision runs when its Deployment (`app: istiod`, a `pilot` image,
an `istio.io/rev` label) has a Ready pod. Its admission webhooks are answered in process:
`revisions` finds the revisions in the store, `injection` turns a pod AdmissionReview into the
JSONPatch Istio's sidecar injector would return, and `resolver` maps a webhook's
`clientConfig.service` to the handler of the istiod behind it (or to nothing, so the call fails
and `failurePolicy` decides, as in a real cluster).
"""
