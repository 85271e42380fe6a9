"""meshcanary: canary upgrades of Istio control planes, with a local sandbox cluster."""

__version__ = "0.1.0"
