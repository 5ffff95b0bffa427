"""The `prepare` deployment's entrypoint (prefect.yaml names this file): the flow is
`pressflow.flows.prepare`. Nothing imports this folder; it is not an installed package."""

from pressflow.flows.prepare import prepare_flow

__all__ = ["prepare_flow"]
