"""What one execution of the idempotent workflow costs, and how fast the envelope is (``make bench``).

    python -m bench              # every path on the offline emulator, as markdown tables
    python -m bench --json       # the same figures as JSON
    python -m bench --quick      # fewer repetitions, no N = 500 contention run (under a minute)

It deploys ``template.yaml`` into the offline emulator (``emulator.OfflineStack``), drives each
path through the stack's public API, counts what each used, prices it and holds it against the
targets of issues 12 and 14. Where to look:

* ``metering``: DynamoDB requests and their capacity units by DynamoDB's billing rules
  (``item_size_bytes``), Lambda calls and durations, states entered from the history;
* ``prices``: list prices and the cost of a million executions (Standard and Express);
* ``targets``: every target, and how a met or missed one reads;
* ``deployment``: the stack under measurement with its counters attached;
* ``paths``: fresh, hit, failure and rerun; hits at 1 KiB and 250 KiB results; the Express variant;
* ``waiters``: one waiter's cost and latency; contention at N = 1, 25, 100, 500; a hit on a key that had waiters;
* ``clock``: the emulator's shortened time turned back into declared seconds;
* ``cold_start``: each handler's cold import beside a bare boto3 handler; ``key_hash``: keying a 200 KiB input;
* ``run``: which stacks and paths, in which order; ``render``: the tables and the JSON.
"""
