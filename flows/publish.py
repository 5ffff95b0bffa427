"""The `publish` and `publish-scheduled` deployments' entrypoint (prefect.yaml names this file):
the flow is `pressflow.flows.publish`. Nothing imports this folder; it is not an installed package."""

from pressflow.flows.publish import publish_flow

__all__ = ["publish_flow"]
