import asyncio


from medic.v1 import heartbeat_pb2
from gateway.batcher import HeartbeatBatcher


def test_concurrent_heartbeats_leave_in_few_batches_and_each_gets_its_own_result():
    batches = []

    async def send(items):
        batches.append(len(items))
        await asyncio.sleep(0.01)
        return heartbeat_pb2.RecordHeartbeatsResponse(results=[
            heartbeat_pb2.RecordHeartbeatResult(outcome=heartbeat_pb2.RECORD_OUTCOME_ACCEPTED,
                                                message=i.heartbeat_name) for i in items])

    async def main():
        batcher = HeartbeatBatcher(send, max_batch=50, max_inflight=2)
        items = [heartbeat_pb2.RecordHeartbeatRequest(heartbeat_name=f"hb-{n}", status="UP") for n in range(200)]
        return await asyncio.gather(*(batcher.record(i) for i in items))

    results = asyncio.run(main())
    assert [r.message for r in results] == [f"hb-{n}" for n in range(200)]
    assert sum(batches) == 200
    assert len(batches) <= 6 and max(batches) <= 50


def test_a_failed_batch_fails_every_waiter_and_later_batches_still_go():
    calls = []

    async def send(items):
        calls.append(len(items))
        if len(calls) == 1:
            raise ConnectionError("heartbeat service down")
        return heartbeat_pb2.RecordHeartbeatsResponse(results=[
            heartbeat_pb2.RecordHeartbeatResult(outcome=heartbeat_pb2.RECORD_OUTCOME_ACCEPTED) for _ in items])

    async def main():
        batcher = HeartbeatBatcher(send)
        first = await asyncio.gather(*(batcher.record(heartbeat_pb2.RecordHeartbeatRequest()) for _ in range(3)),
                                     return_exceptions=True)
        second = await batcher.record(heartbeat_pb2.RecordHeartbeatRequest())
        return first, second

    first, second = asyncio.run(main())
    assert all(isinstance(r, ConnectionError) for r in first)
    assert second.outcome == heartbeat_pb2.RECORD_OUTCOME_ACCEPTED
