"""FastAPI dependencies: the gateway context, the authenticated caller, permission checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from starlette.concurrency import run_in_threadpool

from medgate_common.errors import AuthenticationError, PermissionDeniedError
from medgate_gateway.api.audit import audit
from medgate_gateway.auth.credentials import API_KEY_PREFIX, Principal, decode_token
from medgate_gateway.auth.roles import Permission, allows
from medgate_gateway.auth.users import resolve_api_key
from medgate_gateway.context import GatewayContext

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_context(request: Request) -> GatewayContext:
    context: GatewayContext = request.app.state.gateway
    return context


ContextDep = Annotated[GatewayContext, Depends(get_context)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


async def current_principal(
    request: Request, context: ContextDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal:
    if not token:
        raise AuthenticationError("a bearer token or API key is required")
    if token.startswith(API_KEY_PREFIX):
        # a recently verified key is answered from memory; only a miss costs a thread and argon2
        found = context.key_cache.get(token)
        if found is None:
            found = await run_in_threadpool(resolve_api_key, context.db, token, context.key_cache)
        username, role = found
        return Principal(username, role, "api-key", client_address(request))
    username, role = decode_token(token, secret=context.token_secret, issuer=context.settings.token_issuer)
    return Principal(username, role, "token", client_address(request))


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require(permission: Permission) -> Callable[[Request, GatewayContext, Principal], Awaitable[Principal]]:
    """A dependency that admits callers whose role grants ``permission``; refusals are audited."""

    async def check(request: Request, context: ContextDep, principal: PrincipalDep) -> Principal:
        if not allows(principal.role, permission):
            await audit(
                context,
                principal,
                "access.denied",
                outcome="denied",
                detail={"permission": permission.value, "method": request.method, "path": request.url.path},
            )
            raise PermissionDeniedError(f"role {principal.role!r} may not {permission.value}")
        return principal

    return check


ReaderDep = Annotated[Principal, Depends(require(Permission.DICOM_READ))]
WriterDep = Annotated[Principal, Depends(require(Permission.DICOM_WRITE))]
AdminDep = Annotated[Principal, Depends(require(Permission.USERS_MANAGE))]
AuditorDep = Annotated[Principal, Depends(require(Permission.AUDIT_READ))]
JobsManagerDep = Annotated[Principal, Depends(require(Permission.JOBS_MANAGE))]
