"""The `meshcanary` command: thin wiring from flags to the layers below."""
