"""Roles and the permissions each one grants; routes ask for a permission, never a role."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    RADIOLOGIST = "radiologist"
    TECHNOLOGIST = "technologist"
    ADMIN = "admin"
    SERVICE = "service"  # another MedGate service or an integration engine
    SITE = "site"  # a federated-learning site: model traffic only, never patient data


class Permission(StrEnum):
    DICOM_READ = "dicom:read"  # QIDO, WADO, study lists
    DICOM_WRITE = "dicom:write"  # STOW
    RESULTS_WRITE = "results:write"
    JOBS_MANAGE = "jobs:manage"  # retry a failed workflow job
    REVIEW = "review:sign"  # edit and sign off findings
    USERS_MANAGE = "users:manage"
    AUDIT_READ = "audit:read"
    FL_PARTICIPATE = "fl:participate"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.RADIOLOGIST: frozenset({Permission.DICOM_READ, Permission.REVIEW}),
    Role.TECHNOLOGIST: frozenset({Permission.DICOM_READ, Permission.DICOM_WRITE, Permission.JOBS_MANAGE}),
    Role.ADMIN: frozenset(Permission),
    Role.SERVICE: frozenset(
        {Permission.DICOM_READ, Permission.DICOM_WRITE, Permission.RESULTS_WRITE, Permission.JOBS_MANAGE}
    ),
    Role.SITE: frozenset({Permission.FL_PARTICIPATE}),
}

#: Roles that log in with a password; the others authenticate with API keys.
PEOPLE = frozenset({Role.RADIOLOGIST, Role.TECHNOLOGIST, Role.ADMIN})


def allows(role: str, permission: Permission) -> bool:
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False
