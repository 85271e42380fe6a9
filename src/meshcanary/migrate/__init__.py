"""Moving namespaces between control planes: plan, relabel, restart, wait, verify, roll back.

`plan` decides (pure), `steps` does one idempotent step at a time, `records` keeps what was done
on the namespace itself, and `engine` runs namespaces with bounded parallelism. The CLI and a
later wave-based upgrade are both callers of `engine`.
"""
