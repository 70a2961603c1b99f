"""Spec §3.2's Python client, against the reference server's demo.

Creates the spec's replication (tenant-123, production_db → replica_db,
Premium), starts it, and prints its metrics as they stream. The differences
from the spec's text, each because of where it runs:
- the package is heliosdb.replication.v1 (generated from proto/ by
  scripts/python-example.sh, or by your own grpc_tools.protoc run);
- the demo listens without TLS on localhost:50051 (HELIOS_GRPC), so the
  channel is insecure;
- every call carries a token (spec §5.1): TOKEN, as `npm start` prints;
- SAMPLES (unset: forever) bounds the loop, for the script that tests it.
"""
import os

import grpc
from heliosdb.replication.v1 import replication_pb2, replication_pb2_grpc

channel = grpc.insecure_channel(os.environ.get("HELIOS_GRPC", "localhost:50051"))
client = replication_pb2_grpc.ReplicationServiceStub(channel)
auth = [("authorization", f"Bearer {os.environ['TOKEN']}")]

# Create replication
request = replication_pb2.CreateReplicationRequest(
    tenant_id="tenant-123",
    source=replication_pb2.ConnectionInfo(
        connection_id="550e8400-e29b-41d4-a716-446655440001",
        database="production_db",
    ),
    target=replication_pb2.ConnectionInfo(
        connection_id="550e8400-e29b-41d4-a716-446655440002",
        database="replica_db",
    ),
    config=replication_pb2.ReplicationConfig(
        qos_tier=replication_pb2.QoSTier.PREMIUM,
        max_lag_seconds=5,
        priority=90,
    ),
)
replication = client.CreateReplication(request, metadata=auth)
print(f"Created replication: {replication.id}", flush=True)
client.StartReplication(replication_pb2.StartReplicationRequest(id=replication.id), metadata=auth)

# Stream metrics
samples = int(os.environ.get("SAMPLES", "0"))
for n, metrics in enumerate(
    client.StreamReplicationMetrics(
        replication_pb2.StreamMetricsRequest(
            replication_id=replication.id,
            interval_seconds=int(os.environ.get("INTERVAL_SECONDS", "5")),
        ),
        metadata=auth,
    ),
    start=1,
):
    print(f"Lag: {metrics.replication_lag_seconds:.2f}s, "
          f"Throughput: {metrics.rows_per_second:.0f} rows/s", flush=True)
    if n == samples:
        break
