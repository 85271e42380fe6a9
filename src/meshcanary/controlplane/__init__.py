"""IstioControlPlane: the custom resource, its spec model, its rendered install, its status.

One `IstioControlPlane` is one Istio revision, `istio.io/rev: <name>.<namespace>`, as Service
Mesh Manager and istio-operator v2 run them side by side for canary upgrades. Everything here is
pure (it imports `mesh` and nothing that does I/O), so the operator, the CLI's dry runs and the
tests share it:

- `crd`: the CustomResourceDefinition as data (`deploy/crds/` is generated from it);
- `spec`: the typed model parsed from the resource, checked beyond the schema;
- `render`: the revision's objects (istiod, its config, RBAC, webhooks, expansion gateway);
- `status`: the status the resource should show, given what the cluster shows.

Import modules, not names: `from meshcanary.controlplane import render` then `render.render(cp)`.
"""
