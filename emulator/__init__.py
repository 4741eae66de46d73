"""Offline emulator: deploys this project's ``template.yaml`` into moto, in process.

Step Functions really executes the ASL (moto's vendored interpreter), DynamoDB holds the
records, and the Lambda functions run in this process. See ``docs/emulator.md`` ("Where moto is
laxer than AWS") for what it adapts in moto and why.
"""

from emulator.stack import ExecutionResult, OfflineStack

__all__ = ["ExecutionResult", "OfflineStack"]
