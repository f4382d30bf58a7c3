"""Which member of a consumer group did what: its members as the broker sees them, and the
partitions each service instance processed events from, as its own ``/metrics`` reports."""

from __future__ import annotations

import httpx
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client.parser import text_string_to_metric_families

from crm_devstack.stack import TOPIC_PARTITIONS, LocalStack


async def stable_members(bootstrap: str, group: str) -> int:
    """How many members the group has once stable (0 while it rebalances).

    The embedded broker leaves the members' assignments out of its answer, so which partitions
    a member owns comes from :func:`processed_partitions` instead."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    # Each group: (error_code, group, state, protocol_type, protocol, members, ...).
    return sum(
        len(described[5]) for r in responses for described in r.groups if described[2] == "Stable"
    )


def instance_url(stack: LocalStack, key: str) -> str:
    """The base URL of a process the stack started (``scoring`` or ``scoring/<replica>``)."""
    args = [str(a) for a in stack.processes[key].args]
    return f"http://127.0.0.1:{args[args.index('--port') + 1]}"


async def processed_partitions(base_url: str, topic: str) -> dict[int, float]:
    """partition -> events this instance applied from it (``consumer_events_processed``)."""
    async with httpx.AsyncClient(timeout=10) as client:
        page = (await client.get(f"{base_url}/metrics")).text
    counts: dict[int, float] = {}
    for family in text_string_to_metric_families(page):
        if family.name != "consumer_events_processed":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("topic") == topic:
                partition = int(sample.labels["partition"])
                counts[partition] = counts.get(partition, 0) + sample.value
    return {p: n for p, n in counts.items() if n > 0}


def partition_of(key: str, topic: str) -> TopicPartition:
    """The partition a producer with the default partitioner sends ``key`` to (the relay's)."""
    partitions = list(range(TOPIC_PARTITIONS))
    return TopicPartition(topic, DefaultPartitioner()(key.encode(), partitions, partitions))
