"""Schemathesis against the live server: generated requests (valid and invalid) for every
documented operation, checked for server errors and conformance to /api/v1/openapi.json."""

from __future__ import annotations

import re
from collections import defaultdict

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.runtime import Runtime
from app.services import tokens
from rest_compat.routes import ENDPOINTS
from tests.factories import World, as_token, create_sync
from tests.rest.support import create_finished_run

EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 6}


def no_server_error(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """No 5xx, ever."""
    if response.status_code >= 500:
        raise AssertionError(f"server error {response.status_code}: {response.text[:500]}")


CHECKS = [
    no_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Not `negative_data_rejection`: it reports a negative case whose invalid query parameter was
# dropped on the wire (the request sent was valid) as "accepted". Unknown query parameters and
# body fields are refused (400), which test_transport and test_bad_input assert directly.


async def pinned_ids(runtime: Runtime, world: World) -> dict[str, str]:
    """Real objects of the world, so generated requests get past 403/404 to the services."""
    sync = await create_sync(runtime, world)
    run = await create_finished_run(runtime, world, sync.id)
    async with as_token(runtime, world.admin_token) as ctx:
        spare = await tokens.create_token(ctx, workspace_id=world.workspace_id, data={"name": "s"})
    ids = {
        "id": world.workspace_id,
        "syncId": sync.id,
        "runId": run.id,
        "sourceId": world.source_id,
        "modelId": world.model_id,
        "audienceId": world.audience_id,
        "destinationId": world.destination_id,
        # Never the admin token the fuzzer authenticates with: revoking it would end the run.
        "tokenId": spare.token.id,
    }
    return {name: str(value) for name, value in ids.items()}


async def test_every_operation_conforms_to_the_document(
    live_server: str, runtime: Runtime, world: World
) -> None:
    schema = schemathesis.openapi.from_url(f"{live_server}/api/v1/openapi.json")
    ids = await pinned_ids(runtime, world)
    auth = {"Authorization": f"Bearer {world.admin_token}"}
    failures: list[str] = []
    seen: dict[str, set[int]] = defaultdict(set)
    operations = [result.ok() for result in schema.get_all_operations()]
    # Deletions last, so the other operations meet the pinned objects while they exist.
    for operation in sorted(operations, key=lambda op: op.method.upper() == "DELETE"):
        params = {name: ids[name] for name in re.findall(r"{(\w+)}", operation.path)}
        for mode, examples in EXAMPLES.items():
            strategy = operation.as_strategy(
                generation_mode=mode,
                path_parameters=params,
                headers={"X-Workspace-ID": ids["id"]},
            )

            @given(case=strategy)
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def exercise(case: schemathesis.Case) -> None:
                response = case.call_and_validate(
                    base_url=f"{live_server}/api/v1", headers=auth, checks=CHECKS
                )
                seen[case.operation.label].add(response.status_code)

            try:
                exercise()
            except (AssertionError, BaseExceptionGroup) as exc:
                # Collect every operation's failures, then report them all.
                failures.append(f"{operation.label} [{mode.value}]: {_summary(exc)}")
    assert not failures, "\n\n".join(failures)
    # Every documented operation was exercised, and the fuzzer got through to the services.
    assert len(operations) == len(ENDPOINTS)
    assert set(seen) == {op.label for op in operations}
    succeeded = {label for label, statuses in seen.items() if statuses & {200, 201}}
    assert len(succeeded) >= 25, seen
    assert any(422 in statuses for statuses in seen.values()), seen


def _summary(exc: BaseException) -> str:
    lines = str(exc).splitlines() or [repr(exc)]
    return "\n".join(lines[:25])
