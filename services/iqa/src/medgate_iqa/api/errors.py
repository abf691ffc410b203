"""Errors of this API that the common tree does not define; every error is answered as
problem+json by :func:`medgate_common.api.problems.install_error_handlers`."""

from __future__ import annotations

from medgate_common.errors import InputError


class MixedStudiesError(InputError):
    """One request, one study: the study verdict would otherwise mix two patients."""

    code = "mixed_studies"
