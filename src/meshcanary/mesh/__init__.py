"""The pure domain of meshcanary: what an Istio mesh *means*, with no I/O.

Revision references and the names of per-revision objects (`revisions`), label selectors as the
API server evaluates them (`selectors`), the injection decision (`injection`), versions and skew
rules (`versions`), and proxies derived from pods (`proxies`). Every other layer builds on these
functions; they take plain API JSON (dicts) and return frozen values, so they are cheap to test
exhaustively and never need a cluster. Import modules, not names:
`from meshcanary.mesh import revisions` then `revisions.parse(...)`.
"""
