"""User and API-key administration (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from medgate_gateway.api.audit import audit
from medgate_gateway.api.deps import AdminDep, ContextDep
from medgate_gateway.auth.users import create_api_key, create_user

router = APIRouter(prefix="/api/v1/users", tags=["users"])


class NewUser(BaseModel):
    username: str
    role: str
    password: str = Field(default="", description="Required for people (12+ characters); empty for services and sites")
    full_name: str = ""


class UserOut(BaseModel):
    username: str
    role: str
    full_name: str


class NewApiKey(BaseModel):
    name: str = ""
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class ApiKeyOut(BaseModel):
    token: str = Field(description="Shown once; only a hash is stored")


@router.post("", response_model=UserOut, status_code=status.HTTP_201_CREATED)
async def add_user(body: NewUser, context: ContextDep, admin: AdminDep) -> UserOut:
    user = await run_in_threadpool(create_user, context.db, body.username, body.role, body.password, body.full_name)
    await audit(context, admin, "user.create", resource_type="user", resource_uid=user.username)
    return UserOut(username=user.username, role=user.role, full_name=user.full_name)


@router.post("/{username}/api-keys", response_model=ApiKeyOut, status_code=status.HTTP_201_CREATED)
async def add_api_key(username: str, body: NewApiKey, context: ContextDep, admin: AdminDep) -> ApiKeyOut:
    token = await run_in_threadpool(create_api_key, context.db, username, body.name, body.expires_in_days)
    await audit(context, admin, "apikey.create", resource_type="user", resource_uid=username)
    return ApiKeyOut(token=token)
