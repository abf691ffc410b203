"""All DICOMweb routes under one prefix."""

from __future__ import annotations

from fastapi import APIRouter

from medgate_gateway.dicomweb import stow

router = APIRouter(prefix="/dicomweb")
router.include_router(stow.router)
