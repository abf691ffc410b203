"""All DICOMweb routes under one prefix."""

from __future__ import annotations

from fastapi import APIRouter

from medgate_gateway.dicomweb import qido, stow, wado

router = APIRouter(prefix="/dicomweb")
router.include_router(stow.router)
router.include_router(qido.router)
router.include_router(wado.router)
