"""One catalogue of OpenCAC errors, each with a stable code (``OC-E###``).

Every error names the bad value, what was expected and, where there is a short list,
the valid options. The CLI prints ``str(error)`` as a single line; the service maps
``OpenCACError.http_status`` to the response status.

Ranges: 0xx input, 1xx code sets, 2xx models and engine, 3xx rules, 4xx service and
storage, 5xx learning/routing, 6xx audit, 7xx batch.
"""

from __future__ import annotations

from collections.abc import Iterable


class OpenCACError(Exception):
    """Base class: a user-facing error with a stable code."""

    code: str = "OC-E000"
    http_status: int = 400

    def __init__(self, message: str, *, options: Iterable[str] | None = None) -> None:
        self.message = message
        self.options = list(options) if options is not None else None
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        if self.options:
            shown = ", ".join(self.options[:12])
            more = f" (+{len(self.options) - 12} more)" if len(self.options) > 12 else ""
            text += f" Valid options: {shown}{more}."
        return text


# --- 0xx: input ----------------------------------------------------------------------
class InputError(OpenCACError):
    code = "OC-E001"


class EmptyInputError(InputError):
    code = "OC-E002"


class BinaryInputError(InputError):
    code = "OC-E003"


class InputTooLargeError(InputError):
    code = "OC-E004"
    http_status = 413


class InputNotFoundError(InputError):
    code = "OC-E005"
    http_status = 404


# --- 1xx: code sets ------------------------------------------------------------------
class UnknownCodeSystemError(OpenCACError):
    code = "OC-E101"


class UnknownCodeError(OpenCACError):
    code = "OC-E102"
    http_status = 404


class CodeSetVersionError(OpenCACError):
    code = "OC-E103"


class CodeSetSourceError(OpenCACError):
    code = "OC-E104"


# --- 2xx: models and engine ----------------------------------------------------------
class ModelNotFoundError(OpenCACError):
    code = "OC-E201"
    http_status = 404


class ModelFormatError(OpenCACError):
    code = "OC-E202"


class CorpusError(OpenCACError):
    code = "OC-E203"


# --- 3xx: rules ----------------------------------------------------------------------
class ClaimFormatError(OpenCACError):
    code = "OC-E301"


class GrouperError(OpenCACError):
    code = "OC-E302"


# --- 4xx: service and storage --------------------------------------------------------
class NotFoundError(OpenCACError):
    code = "OC-E401"
    http_status = 404


class ConflictError(OpenCACError):
    code = "OC-E402"
    http_status = 409


class PermissionDeniedError(OpenCACError):
    code = "OC-E403"
    http_status = 403


class AuthenticationError(OpenCACError):
    code = "OC-E404"
    http_status = 401


class AuditChainError(OpenCACError):
    code = "OC-E405"
    http_status = 500


# --- 5xx: learning and routing -------------------------------------------------------
class PolicyError(OpenCACError):
    code = "OC-E501"


class CalibrationError(OpenCACError):
    code = "OC-E502"


class RegistryError(OpenCACError):
    code = "OC-E503"


class PromotionRefusedError(RegistryError):
    code = "OC-E504"
    http_status = 409


class FeedbackError(OpenCACError):
    code = "OC-E505"


# --- 6xx: audit ----------------------------------------------------------------------
class AuditInputError(OpenCACError):
    """A frame, findings file or audit definition is malformed."""

    code = "OC-E601"


class SampleSizeError(OpenCACError):
    """Sample-size parameters out of range (confidence, precision, expected error, population)."""

    code = "OC-E602"


class SamplingError(OpenCACError):
    """A sample cannot be drawn as planned (too few records, unknown method or stratum key)."""

    code = "OC-E603"


class AuditOverrideError(OpenCACError):
    """An override lacks its rationale or guideline citation."""

    code = "OC-E604"


class AuditStateError(OpenCACError):
    """An audit step was attempted out of order (e.g. determination before a finding exists)."""

    code = "OC-E605"
    http_status = 409


class AuditReportError(OpenCACError):
    """A report or model card could not be rendered."""

    code = "OC-E606"


# --- 7xx: batch ----------------------------------------------------------------------
class BatchConfigError(OpenCACError):
    """A batch run was asked for with settings that cannot work (bad format, workers...)."""

    code = "OC-E701"


class CheckpointError(OpenCACError):
    """A batch checkpoint is unreadable or was made by a run with different settings."""

    code = "OC-E702"


class DuplicateDocumentError(OpenCACError):
    """A document id occurs more than once in a batch input; only the first is coded."""

    code = "OC-E703"


class BatchDocumentError(OpenCACError):
    """One document of a batch could not be coded (recorded in the failures file)."""

    code = "OC-E704"


# --- 3xx (appended by the rules layer) ------------------------------------------------
class RuleError(OpenCACError):
    """An edits plugin problem: duplicate or unknown rule name, or a bad plugin object."""

    code = "OC-E303"


# --- 4xx (appended by the service/store layer) -----------------------------------------
class DatabaseError(OpenCACError):
    """The database could not be reached or migrated."""

    code = "OC-E406"
    http_status = 503


class RateLimitedError(OpenCACError):
    """Too many attempts (login rate limiting)."""

    code = "OC-E407"
    http_status = 429


class PayloadFormatError(OpenCACError):
    """A request body that is not valid JSON / FHIR / the expected shape."""

    code = "OC-E408"
    http_status = 422


# --- 7xx: batch (continued) ----------------------------------------------------------
class WorkerCrashError(OpenCACError):
    """A batch worker process died (crash, out of memory) while coding one document."""

    code = "OC-E705"
