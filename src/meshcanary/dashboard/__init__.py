"""The web dashboard: the seed's MESH page, namespaces, validation and a timeline, live.

`server` serves the pages and a JSON/SSE API; `state` builds each page's model from one mesh
snapshot (pure); `cluster` reads and watches a real cluster and runs the migrate engine.
"""
