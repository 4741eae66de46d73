"""Named errors of the idempotency envelope.

Step Functions reports a Lambda error under the exception's class name, so each class name
here is an ASL error name a caller sees on the failed execution (``error`` in
``DescribeExecution``) and can match in a ``Retry`` or ``Catch``. Keep the names stable.
"""


class IdempotencyError(Exception):
    """Base class of every error the envelope raises on purpose."""


class IdempotencyInputNotObjectError(IdempotencyError):
    """The execution input is not a JSON object."""


class IdempotencyKeyExpressionError(IdempotencyError):
    """``idempotencyKeyJmespath`` is not a string, or is not a valid JMESPath expression."""


class IdempotencyKeyEmptyError(IdempotencyError):
    """The key expression selected nothing (null, an empty string/list/object, or only nulls)."""


class IdempotencyWaitTimeoutError(IdempotencyError):
    """Another execution held the record for longer than the configured wait bound."""


class IdempotencyRecordStateError(IdempotencyError):
    """The stored record is in a state the envelope cannot act on (edited by hand, or corrupt)."""


class IdempotencyInputNotJsonSafeError(IdempotencyError):
    """The input cannot be written as canonical JSON: NaN or Infinity (such as 1e400), or a lone surrogate."""


class IdempotencyInputTooLargeError(IdempotencyError):
    """The execution input is too large to travel through the envelope under the 256 KiB payload limit."""


class IdempotencyInputTooDeepError(IdempotencyError):
    """The execution input nests objects and arrays deeper than the envelope accepts."""


class IdempotencyRecordLostError(IdempotencyError):
    """The record is no longer owned by the execution saving its outcome (lease expired and taken over, or released)."""


class IdempotencyExecutionEndedError(IdempotencyError):
    """This execution had already ended (stopped, timed out or failed) when its take of the record ran.

    A Lambda call outlives a stop of its execution; such a late take never takes or extends a
    record, so it cannot hold a key for an execution that will never save. Nothing was written.
    """


class IdempotencyConfigurationError(IdempotencyError):
    """The deployment's parameters contradict each other (raised when a function starts)."""


class IdempotencyResultTooLargeError(IdempotencyError):
    """The steps' result is too large to store and return within Step Functions' payload limit; recorded as FAILED."""


class IdempotencyKeyOverrideNotAllowedError(IdempotencyError):
    """The input sets ``idempotencyKeyJmespath``, but the deployment keys requests itself (``AllowKeyOverride=false``).

    Bad input like the others: nothing is written. Remove the field from the input, or deploy with
    ``AllowKeyOverride=true``.
    """


class IdempotencyPayloadMismatchError(IdempotencyError):
    """A repeat's key matches a record, but the part of its input ``PayloadValidationJmespath`` selects differs.

    The key expression selects too little to tell the two requests apart, or a caller reused a key
    for another request. The record is left as it is and no step runs; the cause names the key,
    never the payload (the payload may hold data the caller should not see in an error).
    """
