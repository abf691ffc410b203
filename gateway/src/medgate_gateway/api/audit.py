"""Write audit rows for HTTP reads and changes of patient data."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from medgate_gateway.auth.credentials import Principal
from medgate_gateway.context import GatewayContext
from medgate_gateway.db.repository import add_audit


def _write(
    context: GatewayContext,
    principal: Principal,
    action: str,
    rtype: str,
    uid: str,
    outcome: str,
    detail: dict[str, Any],
) -> None:
    with context.db.write() as session:
        add_audit(
            session,
            actor=principal.username,
            role=principal.role,
            action=action,
            resource_type=rtype,
            resource_uid=uid,
            client=principal.client,
            outcome=outcome,
            detail=detail,
        )


async def audit(
    context: GatewayContext,
    principal: Principal,
    action: str,
    *,
    resource_type: str = "",
    resource_uid: str = "",
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    await run_in_threadpool(_write, context, principal, action, resource_type, resource_uid, outcome, detail or {})
