"""The Kubernetes source: workloads, claims and PostgreSQL operators' clusters."""
