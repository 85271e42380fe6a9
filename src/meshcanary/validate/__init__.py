"""Validation before migration: Istio configuration and mesh state, checked per target version.

`engine.analyze(snapshot, target, namespaces)` is the one entry point (the CLI's `validate`, the
upgrade pre-flight and the dashboard call it). Analyzers are pure functions over a
`snapshot.ValidationSnapshot`; only `gather` reads the cluster. Every finding carries a stable
code from `findings.CODES`, documented in `docs/validation.md` (generated from that registry).
"""
