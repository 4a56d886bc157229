"""The Mutation root, one module per resource."""

from __future__ import annotations

import strawberry

from graphql_schema.mutations.audience_syncs import AudienceSyncMutations
from graphql_schema.mutations.audiences import AudienceMutations
from graphql_schema.mutations.destinations import DestinationMutations
from graphql_schema.mutations.models import ModelMutations
from graphql_schema.mutations.runs import RunMutations
from graphql_schema.mutations.sources import SourceMutations
from graphql_schema.mutations.split_groups import SplitGroupMutations
from graphql_schema.mutations.tokens import TokenMutations


@strawberry.type
class Mutation(
    AudienceSyncMutations,
    RunMutations,
    SourceMutations,
    ModelMutations,
    AudienceMutations,
    SplitGroupMutations,
    DestinationMutations,
    TokenMutations,
):
    """Every write; each returns the object as stored, deletes return the deleted id.

    Root fields are nullable: a failed field answers null with its error, and the other
    fields of the same document keep their results.
    """
