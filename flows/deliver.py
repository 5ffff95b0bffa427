"""The `deliver` and `deliver-scheduled` deployments' entrypoint (prefect.yaml names this file):
the flow is `pressflow.flows.deliver`. Nothing imports this folder; it is not an installed package."""

from pressflow.flows.deliver import deliver_flow

__all__ = ["deliver_flow"]
