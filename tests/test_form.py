"""The deployment form says what it wants, and Prefect's own validation names the field at fault.

The prepare flow's `events` parameter becomes the Prefect UI's form. These tests read the schema
Prefect builds from the flow's signature, validate bad records with Prefect's validator (the one
its server runs when a flow run is created), and then do both against a real `prefect server`:
a flow run with a bad record is refused with the field named, and the UI's form-validation
endpoint points at the same field.
"""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

GOOD = {"title": "ANSO forum", "date": "2021-06-04", "summary": "The forum met."}
MODELS = ("Event", "Location", "Quote", "Link", "Image", "Contact")


def form_schema() -> dict:
    """The `parameter_openapi_schema` a deployment of the prepare flow carries (what the form is built from)."""
    from pressflow.flows.prepare import prepare_flow

    return prepare_flow.parameters.model_dump_for_openapi()


def server_message(record: dict) -> str:
    """What Prefect's server-side validation says when a flow run is created with this record."""
    from prefect.utilities.schema_tools.validation import ValidationError, validate

    with pytest.raises(ValidationError) as refused:
        validate({"events": [record]}, form_schema(), raise_on_error=True)
    return str(refused.value)


def form_errors(record: dict) -> dict:
    """What Prefect's form validation (the UI's) reports for this record, as its error tree."""
    from prefect.utilities.schema_tools.validation import build_error_obj, validate

    return build_error_obj(validate({"events": [record]}, form_schema()))


def test_every_field_of_the_form_has_a_description():
    definitions = form_schema()["definitions"]
    for model in MODELS:
        for name, prop in definitions[model]["properties"].items():
            assert prop.get("description", "").strip(), f"{model}.{name} has no description"


def test_the_descriptions_say_what_a_value_must_look_like():
    schema = form_schema()
    event = schema["definitions"]["Event"]["properties"]
    assert "ISO 3166-1 alpha-2" in event["countries"]["description"]
    assert "time zone" in event["publish_at"]["description"].lower()
    assert "YYYY-MM-DD" in event["date"]["description"]
    assert "ISO 3166-1 alpha-2" in schema["definitions"]["Location"]["properties"]["country"]["description"]
    # and the flow's own docstring describes the parameter itself
    assert schema["properties"]["events"]["description"].startswith("Event records to prepare")


def test_the_events_parameter_is_a_plain_list():
    # Under `anyOf` (list | None), Prefect's validator only says the list matches no schema.
    events = form_schema()["properties"]["events"]
    assert events["type"] == "array" and events["default"] == []
    assert "anyOf" not in events


def test_a_missing_field_is_named():
    record = {k: v for k, v in GOOD.items() if k != "date"}
    assert server_message(record) == "Validation failed for field 'events[0]'. Failure reason: 'date' is a required property"
    assert form_errors(record) == {"valid": False, "errors": [{"property": "events", "errors": [
        {"index": 0, "errors": [{"property": "date", "errors": ["'date' is a required property"]}]}]}]}


@pytest.mark.parametrize(("field", "value", "path", "reason"), [
    ("countries", ["CNN"], "events[0].countries[0]", "does not match"),
    ("date", 20210604, "events[0].date", "is not of type 'string'"),
    ("location", {"country": "China"}, "events[0].location.country", "does not match"),
    ("colour", "red", "events[0]", "'colour' was unexpected"),
])
def test_a_wrong_field_is_named(field, value, path, reason):
    message = server_message({**GOOD, field: value})
    assert message.startswith(f"Validation failed for field '{path}'."), message
    assert reason in message


def test_the_form_flags_a_date_without_its_format_and_an_embargo_without_time_zone():
    # Only the form checks formats (the server's create-run check does not; the flow's own
    # pydantic validation then refuses the run, naming the field too).
    assert form_errors({**GOOD, "date": "4 June 2021"})["errors"][0]["errors"][0]["errors"] == [
        {"property": "date", "errors": ["'4 June 2021' is not a 'date'"]}]
    flagged = form_errors({**GOOD, "publish_at": "2021-06-04T09:00:00"})["errors"][0]["errors"][0]["errors"]
    assert [entry["property"] for entry in flagged] == ["publish_at"]
    assert form_errors({**GOOD, "publish_at": "2021-06-04T09:00:00+08:00"})["valid"]


def test_a_good_record_passes_and_the_flow_gets_events():
    from prefect.utilities.schema_tools.validation import validate

    from pressflow.flows.prepare import prepare_flow

    assert validate({"events": [GOOD]}, form_schema(), raise_on_error=True) == []
    parameters = prepare_flow.validate_parameters({"events": [GOOD]})
    assert parameters["events"][0].date == dt.date(2021, 6, 4)
    assert prepare_flow.validate_parameters({})["events"] == []


# --- against a real Prefect server ------------------------------------------------------------

@pytest.mark.slow
def test_a_real_server_refuses_a_bad_run_and_its_form_names_the_field(prefect_server):
    """`prefect_server` (conftest) is a `prefect server start` subprocess of this module's own."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectHTTPStatusError

    from pressflow.flows.prepare import prepare_flow

    deployment_id = prepare_flow.to_deployment(name="form-check").apply()
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment(deployment_id)
        assert deployment.enforce_parameter_schema
        properties = deployment.parameter_openapi_schema["definitions"]["Event"]["properties"]
        assert "ISO 3166-1 alpha-2" in properties["countries"]["description"]

        with pytest.raises(PrefectHTTPStatusError) as refused:
            client.create_flow_run_from_deployment(deployment_id, parameters={
                "events": [{"title": "ANSO forum", "summary": "The forum met."}]})
        assert refused.value.response.status_code == 409
        assert refused.value.response.json()["detail"] == (
            "Error creating flow run: Validation failed for field 'events[0]'. "
            "Failure reason: 'date' is a required property")

        good = client.create_flow_run_from_deployment(deployment_id, parameters={"events": [GOOD]})
        assert good.parameters["events"][0]["date"] == "2021-06-04"

    # The UI's form posts the deployment's schema and the values to this endpoint as one types.
    api = prefect_server["PREFECT_API_URL"]
    response = httpx.post(f"{api}/ui/schemas/validate", json={
        "schema": deployment.parameter_openapi_schema,
        "values": {"events": [{**GOOD, "countries": ["CN", "CNN"]}]}}, timeout=30)
    assert response.status_code == 200, response.text
    result = response.json()
    assert not result["valid"]
    (events,) = result["errors"]
    assert events["property"] == "events"
    (record,) = events["errors"]
    assert record["index"] == 0
    (countries,) = record["errors"]
    assert countries["property"] == "countries"
    assert countries["errors"][0]["index"] == 1
    assert "does not match" in countries["errors"][0]["errors"][0]

