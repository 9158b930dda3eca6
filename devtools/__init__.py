"""Development tooling used by tests, the local sandbox and benchmarks (not shipped in the package)."""
