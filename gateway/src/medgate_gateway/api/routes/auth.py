"""OAuth2 password flow for people, and who-am-I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from medgate_common.errors import AuthenticationError
from medgate_gateway.api.deps import ContextDep, PrincipalDep
from medgate_gateway.auth.credentials import issue_token
from medgate_gateway.auth.roles import PEOPLE, Role
from medgate_gateway.auth.users import authenticate_password

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int
    role: str


class Me(BaseModel):
    username: str
    role: str
    via: str


@router.post("/token", response_model=TokenResponse, summary="Exchange username and password for a token")
async def token(context: ContextDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> TokenResponse:
    user = await run_in_threadpool(authenticate_password, context.db, form.username, form.password)
    if Role(user.role) not in PEOPLE:
        raise AuthenticationError("service and site accounts authenticate with API keys")
    settings = context.settings
    access, ttl = issue_token(
        user.username,
        user.role,
        secret=context.token_secret,
        ttl_seconds=settings.token_ttl_seconds,
        issuer=settings.token_issuer,
    )
    return TokenResponse(access_token=access, expires_in=ttl, role=user.role)


@router.get("/me", response_model=Me)
async def me(principal: PrincipalDep) -> Me:
    return Me(username=principal.username, role=principal.role, via=principal.via)
