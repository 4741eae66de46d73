"""What people run against a stack, offline or on AWS: the template reader, the layer's import
helper, execution outcomes and the client of a deployed stack.

Nothing here imports the emulator (``emulator/``): an operator's tool needs boto3 and the
product's code, not the test instrument. The emulator builds on these modules instead.
"""
