"""Step Functions' payload limit, and the share of it the envelope keeps for its own fields.

Step Functions counts 256 KiB in UTF-8 bytes for an execution's input and output, each state's
input and output, a task's raw result and ``SendTaskSuccess`` output. The envelope never lets
the input travel beside a result or a cause (see the ASL), so the input and the result each get
the whole limit less the envelope's fields: a task's metadata, the record's key, the owner's ARN.
"""

PAYLOAD_LIMIT_BYTES = 256 * 1024
ENVELOPE_FIELDS_BYTES = 4 * 1024
# The largest execution input (canonical JSON, UTF-8) the envelope accepts.
MAX_INPUT_BYTES = PAYLOAD_LIMIT_BYTES - ENVELOPE_FIELDS_BYTES
# The largest result (compact JSON, UTF-8) the envelope stores and returns; a larger one is recorded as FAILED.
MAX_RESULT_BYTES = PAYLOAD_LIMIT_BYTES - ENVELOPE_FIELDS_BYTES
