"""Split groups of an audience (DESIGN §5.3): A/B groups and holdouts, replaced as a whole.

The bucket layout is stored with the groups (`SplitGroup.ranges`), so a change of
percentages moves only the members it must (`relayout`). A group keeps its id while its name
stays; a group a sync targets can be neither removed nor made a holdout (409).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlmodel import col, select

from app.context import ServiceContext
from app.errors import AppError, BadRequest, Conflict, FieldError, InvalidInput
from app.services.audience_queries import split_groups_of, split_layout
from app.services.audit import record_audit
from app.services.lookup import authorize, get_many_scoped, get_scoped
from app.sources.splits import SplitLayout, basis_points_of, relayout
from app.validation import parse_input
from models import Audience, AudienceSync, SplitGroup
from models.enums import Role
from models.shapes.catalog import SplitGroupInput

FIELD = "split_groups"
MAX_GROUPS = 100


async def list_split_groups(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, audience_id: uuid.UUID
) -> list[SplitGroup]:
    """The audience's split groups in their order."""
    authorize(ctx, workspace_id)
    audience = await get_scoped(ctx.session, Audience, audience_id, workspace_id, "audience")
    return await split_groups_of(ctx.session, audience.id)


async def split_groups_of_audiences(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, audience_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[SplitGroup]]:
    """The split groups of each of the workspace's audiences among `audience_ids`, in order,
    in two queries whatever their number (for batch loaders)."""
    authorize(ctx, workspace_id)
    scoped = list(await get_many_scoped(ctx.session, Audience, audience_ids, workspace_id))
    found: dict[uuid.UUID, list[SplitGroup]] = {key: [] for key in scoped}
    if scoped:
        rows = await ctx.session.execute(
            select(SplitGroup)
            .where(col(SplitGroup.audience_id).in_(scoped))
            .order_by(col(SplitGroup.position), col(SplitGroup.created_at))
        )
        for group in rows.scalars():
            found[group.audience_id].append(group)
    return found


async def replace_split_groups(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, audience_id: uuid.UUID, data: object
) -> list[SplitGroup]:
    """Replace the audience's groups by `data`, `[{"name", "percentage", "is_holdout"?}]`.

    Percentages are above 0 with two decimals at most and sum to 100 (an empty list removes
    the split). Bad input is a 422 naming `split_groups[i].<field>` or `split_groups`.
    """
    authorize(ctx, workspace_id, Role.editor)
    audience = await get_scoped(ctx.session, Audience, audience_id, workspace_id, "audience")
    wanted = _parse(data)
    points = basis_points_of([item.percentage for item in wanted], field=FIELD)
    current = await split_groups_of(ctx.session, audience.id)
    by_name = {group.name: group for group in current}
    targeted = await _targeted(ctx, [group.id for group in current])
    kept_ids = {by_name[item.name].id for item in wanted if item.name in by_name}
    for group in current:
        if group.id in targeted and group.id not in kept_ids:
            raise Conflict(
                f"split group {group.id} ({group.name!r}) is the target of a sync; it cannot be "
                "removed",
                [FieldError(FIELD, f"{group.name!r} is targeted by sync {targeted[group.id]}")],
            )
    groups: list[SplitGroup] = []
    for index, item in enumerate(wanted):
        group = by_name.get(item.name) or SplitGroup(
            workspace_id=workspace_id, audience_id=audience.id, name=item.name, basis_points=0
        )
        if item.is_holdout and group.id in targeted:
            raise Conflict(
                f"split group {group.id} ({group.name!r}) is the target of a sync; it cannot "
                "become a holdout",
                [FieldError(f"{FIELD}[{index}].is_holdout", f"targeted by {targeted[group.id]}")],
            )
        groups.append(group)
    shares = [(group.id, share) for group, share in zip(groups, points, strict=True)]
    before = split_layout(current) if current else SplitLayout[uuid.UUID]({})
    layout = relayout(before, shares) if shares else None
    for group in current:
        if group.id not in kept_ids:
            await ctx.session.delete(group)
    for position, (group, item, share) in enumerate(zip(groups, wanted, points, strict=True)):
        group.basis_points = share
        group.is_holdout = item.is_holdout
        group.position = position
        group.ranges = [list(r) for r in layout.ranges[group.id]] if layout else []
        ctx.session.add(group)
    record_audit(
        ctx,
        workspace_id=workspace_id,
        action="audience.split_groups.replace",
        target_type="audience",
        target_id=audience.id,
        detail={"groups": [{"name": g.name, "basis_points": g.basis_points} for g in groups]},
    )
    await ctx.session.commit()
    return groups


def _parse(data: object) -> list[SplitGroupInput]:
    """The body as split-group inputs; every problem named under `split_groups[i]`."""
    if not isinstance(data, list):
        raise BadRequest(
            "the body must be a JSON array of split groups",
            [FieldError(FIELD, "expected an array")],
        )
    if len(data) > MAX_GROUPS:
        raise InvalidInput.field(FIELD, f"at most {MAX_GROUPS} split groups")
    items: list[SplitGroupInput] = []
    errors: list[FieldError] = []
    malformed = False  # a non-object item or an unknown field: 400, as for any body
    for index, raw in enumerate(data):
        try:
            items.append(parse_input(SplitGroupInput, raw))
        except AppError as exc:
            malformed = malformed or isinstance(exc, BadRequest)
            prefix = f"{FIELD}[{index}]"
            errors.extend(
                FieldError(prefix if d.field == "body" else f"{prefix}.{d.field}", d.message)
                for d in exc.details
            )
    if not errors:
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            if item.name in seen:
                errors.append(
                    FieldError(
                        f"{FIELD}[{index}].name", f"repeats the name of group {seen[item.name]}"
                    )
                )
            seen.setdefault(item.name, index)
    if errors:
        error = BadRequest if malformed else InvalidInput
        raise error(f"{errors[0].field}: {errors[0].message}", errors)
    return items


async def _targeted(
    ctx: ServiceContext, group_ids: list[uuid.UUID]
) -> Mapping[uuid.UUID, uuid.UUID]:
    """Group id -> a sync that targets it, among `group_ids`."""
    if not group_ids:
        return {}
    rows = await ctx.session.execute(
        select(AudienceSync.split_group_id, AudienceSync.id).where(
            AudienceSync.split_group_id.in_(group_ids)  # type: ignore[union-attr]
        )
    )
    return {group_id: sync_id for group_id, sync_id in rows.all()}
